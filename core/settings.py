"""Settings: params.yaml is the single source, environment variables override it.

Every load is checked against the typed sections of `core.sections`: an unknown key or section,
a missing one or a value of the wrong type fails with the key named (and the valid ones listed).

``ALOD__SECTION__KEY=value`` overrides ``section.key`` (the value is parsed as YAML,
so ``ALOD__TRAIN__EPOCHS=3`` is the integer 3). The file is ``ALOD_PARAMS`` if set, else
``params.yaml`` in the current folder (where `dvc repro` runs), else the repo's own.
Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from core.sections import validate

ENV_PREFIX = "ALOD__"
REPO_ROOT = Path(__file__).resolve().parent.parent


def params_path() -> Path:
    if os.environ.get("ALOD_PARAMS"):
        return Path(os.environ["ALOD_PARAMS"]).resolve()
    here = Path.cwd() / "params.yaml"
    return (here if here.exists() else REPO_ROOT / "params.yaml").resolve()


def load_params(path: str | Path | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """params.yaml as plain nested dicts, with environment overrides applied."""
    path = Path(path) if path else params_path()
    if not path.exists():
        raise FileNotFoundError(f"settings file not found: {path} (set ALOD_PARAMS or run from the repo root)")
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    params = apply_env_overrides(params, os.environ if environ is None else environ)
    validate(params)  # every section and key of core.sections, each of its type: a typo fails here, named
    params["_root"] = str(path.parent)
    return params


def apply_env_overrides(params: dict[str, Any], environ: dict[str, str] | os._Environ) -> dict[str, Any]:
    params = copy.deepcopy(params)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        node = params
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
    return params


def resolve_path(params: dict[str, Any], value: str | os.PathLike[str] | None) -> Path | None:
    """A path from the settings, made absolute against the settings file's folder."""
    if value is None:
        return None
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else (Path(params.get("_root", REPO_ROOT)) / p).resolve()


def configure_environment(root: Path = REPO_ROOT) -> None:
    """Keep every tool offline and writing inside the project. Call before importing ultralytics."""
    defaults = {
        "YOLO_OFFLINE": "1",
        # ultralytics pip-installs missing plugins (e.g. pi-heif on an unreadable image) unless told not to
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": str(root / ".yolo"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        "MPLCONFIGDIR": str(root / ".cache" / "matplotlib"),
        "MPLBACKEND": "Agg",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


def disable_ultralytics_integrations() -> None:
    """alod logs to MLflow itself; ultralytics' own callbacks would log a second, silent copy."""
    configure_environment()
    from ultralytics.utils import SETTINGS

    wanted = {"mlflow": False, "wandb": False, "tensorboard": False, "clearml": False, "comet": False, "raytune": False}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
