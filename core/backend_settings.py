"""Backend settings: params.yaml's ``backend`` section plus the environment variables Label Studio's ML backends read.

Precedence: an environment variable named below > ``ALOD__BACKEND__KEY`` > params.yaml, whose
``backend`` section holds every value with its comment (a hand-built section is checked like the
file: `core.sections.BackendSection`).
Environment variables: MODEL_URI, LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY (or LABEL_STUDIO_ACCESS_TOKEN),
BASIC_AUTH_USER / BASIC_AUTH_PASS, LOCAL_FILES_DOCUMENT_ROOT, MLFLOW_TRACKING_URI, TORCH_THREADS.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.sections import BackendSection, section
from core.settings import load_params, resolve_path


@dataclass(frozen=True)
class BackendSettings:
    model_uri: str
    root: Path
    params: dict[str, Any] = field(repr=False)
    fallback_weights: str | None  # only for a registry model_uri
    model_poll_s: float
    model_cache_dir: Path
    warmup: bool
    torch_threads: int | None
    max_batch_tasks: int
    max_request_bytes: int
    chunk_tasks: int
    fetch_workers: int
    batching: bool
    batch_wait_ms: float | None
    batch_size: int | None
    image_timeout_s: float
    image_max_bytes: int
    image_max_pixels: int
    chunk_max_pixels: int | None
    image_hosts_allow: tuple[str, ...]
    insecure_no_auth: bool
    train_command: tuple[str, ...]
    train_dir: Path
    train_after_annotations: int
    push_batch: int
    mlflow_tracking_uri: str | None
    label_studio_url: str | None
    label_studio_api_key: str | None = field(repr=False)
    local_files_document_root: Path | None
    basic_auth: tuple[str, str] | None = field(repr=False)
    strategy: str
    strategy_params: dict[str, Any]
    seed: int
    conf_predict: float

    @classmethod
    def load(cls, params: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> BackendSettings:
        params = load_params() if params is None else params
        env = os.environ if environ is None else environ
        cfg = params["backend"]
        section(BackendSection, cfg, "backend")  # a hand-built section is checked like params.yaml
        model_uri = env.get("MODEL_URI") or cfg["model_uri"] or params["model"]["base_weights"]
        if not str(model_uri).startswith("models:/"):
            model_uri = str(resolve_path(params, model_uri))
        fallback = cfg["fallback_weights"] or params["model"]["base_weights"]
        fallback = str(resolve_path(params, fallback)) if str(model_uri).startswith("models:/") else None
        user, password = env.get("BASIC_AUTH_USER"), env.get("BASIC_AUTH_PASS")
        if bool(user) != bool(password):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        docroot = env.get("LOCAL_FILES_DOCUMENT_ROOT") or cfg["local_files_document_root"]
        command = cfg["train_command"]
        strategy, detector = params["strategy"], params["detector"]
        threads = cfg["torch_threads"] or env.get("TORCH_THREADS") or env.get("ALOD_DEFAULT_TORCH_THREADS")
        return cls(
            model_uri=str(model_uri),
            root=Path(params["_root"]),
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
            mlflow_tracking_uri=_tracking_uri(params, env, cfg["mlflow_tracking_uri"]),
            label_studio_url=(env.get("LABEL_STUDIO_URL") or env.get("LABEL_STUDIO_HOST") or "").rstrip("/") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or env.get("LABEL_STUDIO_ACCESS_TOKEN") or None,
            local_files_document_root=Path(docroot).resolve() if docroot else None,
            basic_auth=(user, password) if user and password else None,
            strategy=str(strategy["name"]),
            strategy_params=dict(strategy.get("params") or {}),
            seed=int(params["seed"]),
            conf_predict=float(detector["conf_predict"]),
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
