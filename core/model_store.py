"""The model a worker serves: resolved from MODEL_URI, loaded once, switched without a restart.

MODEL_URI is a ``.pt`` file, or an MLflow registry URI: ``models:/name/3``, ``models:/name@alias``,
``models:/name/latest`` (or a legacy stage, ``models:/name/Production``). The reported
``model_version`` is ``"<registered name>:<version>"`` for the registry and ``"<file name>@<first 8
hex of its SHA-256>"`` for a file, so a retrained file or a moved alias is a new version.

Resolving (which version is current?) is cheap and done on ``/setup`` and every ``model_poll_s``;
loading happens once per worker on first use (or in the background right after the worker starts).
When a newer version is resolved it is loaded in a background thread and swapped in when ready;
requests keep using the old model meanwhile, and each prediction carries the version of the model
that made it. With a ``fallback`` (a weights file), a registry URI that does not resolve yet (nothing
registered, no such alias) serves the fallback until it does: the loop works from the first minute
and switches to the registered model at the first resolve that succeeds.

A registered version's artifacts must contain the YOLO ``.pt``: ``best.pt``, else
``model.pt`` (what the cycle's `evaluate` stage registers, beside ``previous.pt``), else the only one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))$")


@dataclass(frozen=True)
class ModelRef:
    uri: str
    version: str  # the model_version predictions carry
    weights: Path | None = None  # the local .pt; None for a registry version not downloaded yet
    registry_name: str | None = None
    registry_version: str | None = None


def file_version(path: Path, _cache: dict[tuple[str, int, int], str] = {}) -> str:  # noqa: B006 - memo
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _cache[key] = f"{path.name}@{digest.hexdigest()[:8]}"
    return _cache[key]


def _client(tracking_uri: str | None) -> Any:
    from core.settings import configure_environment

    configure_environment()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri) if tracking_uri else MlflowClient()


def resolve(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """Which model ``uri`` names now (no download)."""
    match = _MODELS_URI.match(uri)
    if not uri.startswith("models:/"):
        path = Path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"model weights not found: {uri}")
        return ModelRef(uri, file_version(path), path)
    if not match:
        raise ValueError(
            f"cannot parse model URI {uri!r}: expected models:/name/<version|latest|stage> or models:/name@alias"
        )
    name, alias, ref = match["name"], match["alias"], match["ref"]
    client = _client(tracking_uri)
    if alias:
        version = str(client.get_model_version_by_alias(name, alias).version)
    elif ref.isdigit():
        version = str(client.get_model_version(name, ref).version)
    elif ref.lower() == "latest":
        versions = [int(v.version) for v in client.search_model_versions(f"name='{name}'")]
        if not versions:
            raise ValueError(f"registered model {name!r} has no versions")
        version = str(max(versions))
    else:
        latest = client.get_latest_versions(name, stages=[ref])
        if not latest:
            raise ValueError(f"registered model {name!r} has no version in stage {ref!r}")
        version = str(latest[0].version)
    return ModelRef(uri, f"{name}:{version}", None, name, version)


def registry_versions(name: str, tracking_uri: str | None = None) -> list[str]:
    found = _client(tracking_uri).search_model_versions(f"name='{name}'")
    return [f"{name}:{v}" for v in sorted((int(v.version) for v in found), reverse=True)]


PREFERRED_WEIGHTS = ("best.pt", "model.pt")  # ultralytics' best checkpoint; the cycle's `model/model.pt`


def find_weights(folder: Path) -> Path:
    """The YOLO checkpoint in a registered model's artifacts: best.pt, else model.pt, else the only .pt."""
    found = sorted(p for p in folder.rglob("*.pt") if p.is_file())
    for name in PREFERRED_WEIGHTS:
        named = [p for p in found if p.name == name]
        if len(named) == 1:
            return named[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no .pt file in the registered model's artifacts ({folder})")
    names = [str(p.relative_to(folder)) for p in found]
    raise ValueError(f"several .pt files and no single best.pt or model.pt in {folder}: {names}")


DIGEST_TAG = "weights_sha256"  # recorded on the model version when the cycle registers it


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def digest_tags(model_dir: Path) -> dict[str, str]:
    """The tags that let a server check a registered version's weights before loading them."""
    return {DIGEST_TAG: sha256_file(find_weights(Path(model_dir)))}


def fetch_weights(ref: ModelRef, cache_dir: Path, tracking_uri: str | None = None) -> ModelRef:
    """``ref`` with a local ``weights`` file, downloading a registry version once into ``cache_dir``.

    Loading a checkpoint unpickles it (it can run code), so a registry version is served only when
    its file's sha256 equals the digest recorded at registration (tag ``weights_sha256``): whoever
    can only move an alias or register a version elsewhere cannot get other weights loaded.
    """
    if ref.weights is not None:
        return ref
    final = cache_dir / str(ref.registry_name) / str(ref.registry_version)
    if not final.is_dir():
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow

        partial = cache_dir / str(ref.registry_name) / f".{ref.registry_version}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        # The version's own artifact location, read with our client: MLflow's models:/ download uses
        # the global registry URI and would ignore tracking_uri.
        source = _client(tracking_uri).get_model_version_download_uri(ref.registry_name, ref.registry_version)
        mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(partial), tracking_uri=tracking_uri)
        try:
            partial.rename(final)  # another worker may have finished first: keep its copy
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
    weights = find_weights(final)
    recorded = _client(tracking_uri).get_model_version(ref.registry_name, ref.registry_version).tags.get(DIGEST_TAG)
    if not recorded:
        raise ValueError(f"{ref.version}: no {DIGEST_TAG} tag recorded at registration; refusing to load its weights")
    if sha256_file(weights) != recorded:
        raise ValueError(f"{ref.version}: the weights' sha256 differs from the digest recorded at registration")
    return ModelRef(ref.uri, ref.version, weights, ref.registry_name, ref.registry_version)


class ModelStore:
    """One per worker: the loaded detector and its version, swapped atomically on a newer version."""

    def __init__(
        self,
        uri: str,
        load: Callable[[Path], Any],
        cache_dir: Path,
        tracking_uri: str | None = None,
        poll_s: float = 0.0,
        fallback: str | None = None,
    ) -> None:
        self.uri, self._load_fn, self.cache_dir, self.fallback = uri, load, cache_dir, fallback
        self.tracking_uri, self.poll_s = tracking_uri, poll_s
        self._current: tuple[Any, ModelRef] | None = None
        self._target: ModelRef | None = None
        self._load_lock = threading.Lock()
        self._resolve_lock = threading.Lock()
        self._switching: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self.last_error: str | None = None
        self.loaded_at: float | None = None

    # -- resolving -------------------------------------------------------------------------
    def refresh(self) -> ModelRef:
        """Resolve MODEL_URI again; a new version starts loading in the background."""
        with self._resolve_lock:
            try:
                ref = resolve(self.uri, self.tracking_uri)
            except Exception as exc:  # noqa: BLE001 - keep serving the loaded model
                self.last_error = f"resolving {self.uri}: {type(exc).__name__}: {exc}"
                if self._target is None and self.fallback:
                    self._target = resolve(self.fallback)  # nothing registered yet: the base weights meanwhile
                    log.warning("%s; serving the fallback %s until it resolves", self.last_error, self._target.version)
                    return self._target
                if self._target is None:
                    raise
                log.warning("%s; keeping %s", self.last_error, self._target.version)
                return self._target
            self._target = ref
        current = self._current
        if current is not None and current[1].version != ref.version:
            log.info("model version %s -> %s: loading in the background", current[1].version, ref.version)
            self._switch_in_background(ref)
        return ref

    def target(self) -> ModelRef:
        return self._target or self.refresh()

    @property
    def known_version(self) -> str | None:
        """The last resolved version without resolving again (None before the first resolve)."""
        target = self._target
        return target.version if target is not None else None

    def reported_version(self) -> str:
        """The version /setup reports: the loaded model's, else the one that will be loaded."""
        current = self._current
        return current[1].version if current is not None else self.target().version

    def versions(self) -> list[str]:
        ref = self.target()
        if ref.registry_name is None:
            return [ref.version]
        return registry_versions(ref.registry_name, self.tracking_uri)

    # -- loading ---------------------------------------------------------------------------
    def model(self) -> tuple[Any, ModelRef]:
        """The loaded (detector, ref), loading it on first use."""
        current = self._current
        if current is not None:
            return current
        with self._load_lock:
            if self._current is None:
                ref = fetch_weights(self.target(), self.cache_dir, self.tracking_uri)
                started = time.perf_counter()
                self._current = (self._load_fn(ref.weights), ref)  # type: ignore[arg-type]
                self.loaded_at = time.time()
                log.info("loaded model %s (%s) in %.1f s", ref.version, ref.weights, time.perf_counter() - started)
            return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def _switch_in_background(self, ref: ModelRef) -> None:
        if self._switching is not None and self._switching.is_alive():
            return  # the running switch re-checks the target when it finishes

        def switch() -> None:
            wanted = ref
            while True:
                try:
                    fetched = fetch_weights(wanted, self.cache_dir, self.tracking_uri)
                    detector = self._load_fn(fetched.weights)
                except Exception as exc:  # noqa: BLE001 - keep serving the old model
                    self.last_error = f"loading {wanted.version}: {type(exc).__name__}: {exc}"
                    log.error("%s; keeping the loaded model", self.last_error)
                    return
                with self._load_lock:
                    self._current = (detector, fetched)
                    self.loaded_at = time.time()
                log.info("now serving model %s", fetched.version)
                target = self._target
                if target is None or target.version == fetched.version:
                    return
                wanted = target

        self._switching = threading.Thread(target=switch, name="alod-model-switch", daemon=True)
        self._switching.start()

    def wait_for_switch(self, timeout: float | None = None) -> None:
        if self._switching is not None:
            self._switching.join(timeout)

    def warm_up(self) -> threading.Thread:
        """Load in the background (a gunicorn worker calls this when it starts)."""

        def run() -> None:
            try:
                self.model()
            except Exception as exc:  # noqa: BLE001 - the first request reports it again
                self.last_error = f"loading {self.uri}: {type(exc).__name__}: {exc}"
                log.error("warm-up failed: %s", self.last_error)

        thread = threading.Thread(target=run, name="alod-model-warmup", daemon=True)
        thread.start()
        return thread

    def start_polling(self) -> None:
        if self.poll_s <= 0 or (self._poller is not None and self._poller.is_alive()):
            return

        def poll() -> None:
            while True:
                time.sleep(self.poll_s)
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001
                    log.warning("model poll failed: %s", exc)

        self._poller = threading.Thread(target=poll, name="alod-model-poll", daemon=True)
        self._poller.start()
