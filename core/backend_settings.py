"""Backend settings: params.yaml's ``backend`` section plus the environment variables Label Studio's ML backends read.

Precedence: an environment variable named below > ``ALOD__BACKEND__KEY`` > params.yaml > default.
Environment variables: MODEL_URI, LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY (or LABEL_STUDIO_ACCESS_TOKEN),
BASIC_AUTH_USER / BASIC_AUTH_PASS, LOCAL_FILES_DOCUMENT_ROOT, MLFLOW_TRACKING_URI, TORCH_THREADS.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import load_params, resolve_path

# Defaults of the `backend:` section (see the README's "ML backend" section for the YAML block).
DEFAULTS: dict[str, Any] = {
    "model_uri": None,  # None: model.base_weights. A .pt path, models:/name/3, models:/name@alias, models:/name/latest
    "fallback_weights": None,  # served while a models:/ MODEL_URI does not resolve yet; None: model.base_weights
    "model_poll_s": 60.0,  # re-resolve a registry alias / latest every N seconds; 0 = only on /setup
    "model_cache_dir": ".cache/models",  # registry models are downloaded here, one folder per version
    "warmup": True,  # gunicorn workers load the model in the background as soon as they start
    "torch_threads": None,  # None: TORCH_THREADS, else CPU cores / gunicorn workers (torch's default outside gunicorn)
    "max_batch_tasks": 1000,  # larger /predict batches get 413: use `alod push-predictions`
    "max_request_mb": 64,
    "chunk_tasks": 32,  # tasks fetched and detected together (bounds memory of a large batch)
    "fetch_workers": 8,
    "batching": True,  # images of concurrent /predict requests share one forward pass (core/batching.py)
    "batch_wait_ms": None,  # most a queued request waits for announced ones; None: 0 on CPU, 2 on GPU
    "batch_size": None,  # None: detector.batch; images per shared forward pass
    "image_timeout_s": 10.0,  # per image download (connect + read, whole body)
    "image_max_mb": 50,
    "image_max_pixels": 50_000_000,
    "chunk_max_pixels": 100_000_000,  # decoded pixels one request holds at once (3 bytes each); null: no budget
    "image_hosts_allow": [],  # hosts (a.example.com, *.s3.amazonaws.com), IPs or CIDRs images may come from
    "insecure_no_auth": False,  # serve without BASIC_AUTH_USER/PASS (only on a trusted network; logged at start)
    "train_command": "dvc repro",
    "train_dir": "runs/backend",  # lock, state and logs of training runs started by the backend
    "train_after_annotations": 0,  # start a run after this many annotation webhooks; 0 = never
    "push_batch": 64,
    "mlflow_tracking_uri": None,  # None: MLFLOW_TRACKING_URI, else the cycle's store (mlflow.tracking_uri)
    "local_files_document_root": None,  # None: LOCAL_FILES_DOCUMENT_ROOT; read Local Storage files from disk
}


@dataclass(frozen=True)
class BackendSettings:
    model_uri: str
    root: Path
    params: dict[str, Any] = field(repr=False)
    fallback_weights: str | None = None  # only for a registry model_uri
    model_poll_s: float = 60.0
    model_cache_dir: Path = Path(".cache/models")
    warmup: bool = True
    torch_threads: int | None = None
    max_batch_tasks: int = 1000
    max_request_bytes: int = 64 << 20
    chunk_tasks: int = 32
    fetch_workers: int = 8
    batching: bool = True
    batch_wait_ms: float | None = None
    batch_size: int | None = None
    image_timeout_s: float = 10.0
    image_max_bytes: int = 50 << 20
    image_max_pixels: int = 50_000_000
    chunk_max_pixels: int | None = 100_000_000
    image_hosts_allow: tuple[str, ...] = ()
    insecure_no_auth: bool = False
    train_command: tuple[str, ...] = ("dvc", "repro")
    train_dir: Path = Path("runs/backend")
    train_after_annotations: int = 0
    push_batch: int = 64
    mlflow_tracking_uri: str | None = None
    label_studio_url: str | None = None
    label_studio_api_key: str | None = field(default=None, repr=False)
    local_files_document_root: Path | None = None
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    strategy: str = "uncertainty"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    conf_predict: float = 0.25

    @classmethod
    def load(cls, params: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> BackendSettings:
        params = load_params() if params is None else params
        env = os.environ if environ is None else environ
        cfg = {**DEFAULTS, **(params.get("backend") or {})}
        model_uri = env.get("MODEL_URI") or cfg["model_uri"] or params["model"]["base_weights"]
        if not str(model_uri).startswith("models:/"):
            model_uri = str(resolve_path(params, model_uri))
        fallback = cfg["fallback_weights"] or params["model"]["base_weights"]
        fallback = str(resolve_path(params, fallback)) if str(model_uri).startswith("models:/") else None
        user, password = env.get("BASIC_AUTH_USER"), env.get("BASIC_AUTH_PASS")
        if bool(user) != bool(password):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        docroot = env.get("LOCAL_FILES_DOCUMENT_ROOT") or cfg.get("local_files_document_root")
        command = cfg["train_command"]
        strategy = params.get("strategy") or {}
        detector = params.get("detector") or {}
        threads = cfg["torch_threads"] or env.get("TORCH_THREADS") or env.get("ALOD_DEFAULT_TORCH_THREADS")
        return cls(
            model_uri=str(model_uri),
            root=Path(params.get("_root", ".")),
            params=params,
            fallback_weights=fallback,
            model_poll_s=float(cfg["model_poll_s"] or 0),
            model_cache_dir=resolve_path(params, cfg["model_cache_dir"]),  # type: ignore[arg-type]
            warmup=bool(cfg["warmup"]),
            torch_threads=int(threads) if threads else None,
            max_batch_tasks=int(cfg["max_batch_tasks"]),
            max_request_bytes=int(float(cfg["max_request_mb"]) * (1 << 20)),
            chunk_tasks=max(1, int(cfg["chunk_tasks"])),
            fetch_workers=max(1, int(cfg["fetch_workers"])),
            batching=_flag(cfg["batching"]),
            batch_wait_ms=max(0.0, float(cfg["batch_wait_ms"])) if cfg["batch_wait_ms"] is not None else None,
            batch_size=max(1, int(cfg["batch_size"])) if cfg["batch_size"] else None,
            image_timeout_s=float(cfg["image_timeout_s"]),
            image_max_bytes=int(float(cfg["image_max_mb"]) * (1 << 20)),
            image_max_pixels=int(cfg["image_max_pixels"]),
            chunk_max_pixels=int(cfg["chunk_max_pixels"] or 0) or None,
            image_hosts_allow=tuple(str(h) for h in cfg["image_hosts_allow"] or ()),
            insecure_no_auth=_truthy(env.get("ALOD_INSECURE_NO_AUTH", cfg["insecure_no_auth"])),
            train_command=tuple(shlex.split(command) if isinstance(command, str) else map(str, command)),
            train_dir=resolve_path(params, cfg["train_dir"]),  # type: ignore[arg-type]
            train_after_annotations=int(cfg["train_after_annotations"] or 0),
            push_batch=max(1, int(cfg["push_batch"])),
            mlflow_tracking_uri=_tracking_uri(params, env, cfg.get("mlflow_tracking_uri")),
            label_studio_url=(env.get("LABEL_STUDIO_URL") or env.get("LABEL_STUDIO_HOST") or "").rstrip("/") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or env.get("LABEL_STUDIO_ACCESS_TOKEN") or None,
            local_files_document_root=Path(docroot).resolve() if docroot else None,
            basic_auth=(user, password) if user and password else None,
            strategy=str(strategy.get("name", "uncertainty")),
            strategy_params=dict(strategy.get("params") or {}),
            seed=int(params.get("seed", 0) or 0),
            conf_predict=float(detector.get("conf_predict", 0.25)),
        )


def _flag(value: Any) -> bool:
    """A YAML bool, or the string an environment override may carry."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _tracking_uri(params: dict[str, Any], env: Any, configured: str | None) -> str | None:
    """The registry the cycle writes to (core.tracking), unless the backend is pointed elsewhere."""
    if env.get("MLFLOW_TRACKING_URI") or configured:
        return str(env.get("MLFLOW_TRACKING_URI") or configured)
    if not params.get("mlflow"):
        return None
    from core.tracking import tracking_uri

    return tracking_uri(params)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")
