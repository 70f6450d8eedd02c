"""The sections of params.yaml as typed records: which keys each holds and of what type.

No field has a default: params.yaml holds every value (with its comment), so a default lives in
exactly one place. `validate` checks a loaded params dict against these records; `core.settings`
calls it on every load. Free-form parts: ``datasets`` (one entry per dataset, read by the dataset
readers) and ``strategy.params`` (checked against the strategy's signature by `strategies.registry`).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class DatasetSection:
    name: str
    manifest_dir: str
    yolo_dir: str
    auto_split: dict | None


@dataclass(frozen=True)
class ModelSection:
    base_weights: str
    imgsz: int


@dataclass(frozen=True)
class DetectorSection:
    device: str | int
    half: str | bool
    batch: int
    conf_score: float
    conf_predict: float
    iou: float
    max_det: int
    agnostic_nms: bool
    tta_flip: bool
    divergence_radius: float | None
    divergence_region: int
    divergence_units: str


@dataclass(frozen=True)
class ScoreSection:
    out_dir: str
    weights: str | None
    split: str | None
    chunk_size: int
    engine: str
    ray_address: str | None
    ray_workers: str | int
    ray_gpus_per_worker: str | float
    ray_cpus_per_worker: float


@dataclass(frozen=True)
class StrategySection:
    name: str
    params: dict | None


@dataclass(frozen=True)
class BudgetSection:
    frames: int | None
    boxes: int | None
    cost: float | None
    box_conf_threshold: float
    frame_cost: float
    box_cost: float


@dataclass(frozen=True)
class BoxLevelSection:
    iou_snap: float
    accept_iou: float
    noisy_weight: float
    noisy_conf: float | None
    cover_iou: float
    train_background_answers: bool
    loss_normalisation: str


@dataclass(frozen=True)
class CycleSection:
    source: str
    dir: str
    initial_frames: int
    initial_selection: str


@dataclass(frozen=True)
class TrainSection:
    epochs: int
    batch: int
    device: str | int
    warm_start: str
    val_split: str
    val_limit: int | None
    workers: int
    patience: int


@dataclass(frozen=True)
class EvaluateSection:
    split: str
    limit: int | None
    min_labeled_frames: int


@dataclass(frozen=True)
class BackendSection:
    model_uri: str | None
    fallback_weights: str | None
    model_poll_s: float
    model_cache_dir: str
    warmup: bool
    torch_threads: int | None
    max_batch_tasks: int
    max_request_mb: float
    chunk_tasks: int
    fetch_workers: int
    batching: bool
    batch_wait_ms: float | None
    batch_size: int | None
    image_timeout_s: float
    image_max_mb: float
    image_max_pixels: int
    chunk_max_pixels: int | None
    image_hosts_allow: list
    insecure_no_auth: bool
    train_command: str | list
    train_dir: str
    train_after_annotations: int
    push_batch: int
    mlflow_tracking_uri: str | None
    local_files_document_root: str | None


@dataclass(frozen=True)
class LabelStudioSection:
    set_model_version: bool
    live_queue: bool


@dataclass(frozen=True)
class MlflowSection:
    tracking_uri: str
    project: str | None
    registered_model: str | None
    champion_alias: str


@dataclass(frozen=True)
class Settings:
    """Every section of params.yaml, typed (``datasets`` stays a plain mapping)."""

    dataset: DatasetSection
    datasets: dict
    model: ModelSection
    detector: DetectorSection
    score: ScoreSection
    strategy: StrategySection
    budget: BudgetSection
    box_level: BoxLevelSection
    cycle: CycleSection
    train: TrainSection
    evaluate: EvaluateSection
    backend: BackendSection
    label_studio: LabelStudioSection
    mlflow: MlflowSection
    seed: int


SECTIONS: dict[str, type] = {
    "dataset": DatasetSection,
    "model": ModelSection,
    "detector": DetectorSection,
    "score": ScoreSection,
    "strategy": StrategySection,
    "budget": BudgetSection,
    "box_level": BoxLevelSection,
    "cycle": CycleSection,
    "train": TrainSection,
    "evaluate": EvaluateSection,
    "backend": BackendSection,
    "label_studio": LabelStudioSection,
    "mlflow": MlflowSection,
}
SCALARS: dict[str, Any] = {"seed": int}
FREE_FORM = ("datasets",)  # checked by their readers


class SettingsError(ValueError):
    """params.yaml (or an ALOD__ override) does not match the sections above."""


def section(cls: type, values: Any, where: str) -> Any:
    """``values`` as a ``cls`` record: every field present, no other key, each of its type."""
    if not isinstance(values, dict):
        raise SettingsError(f"{where}: expected a mapping of settings, got {values!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {unknown}; valid: {sorted(names)}")
    missing = [n for n in names if n not in values]
    if missing:
        keys = [f"{where}.{n}" for n in missing]
        raise SettingsError(f"{where}: missing key(s) {keys} (declare them in params.yaml)")
    for name in names:
        if not _is(values[name], hints[name]):
            raise SettingsError(f"{where}.{name}: expected {_name(hints[name])}, got {values[name]!r}")
    return cls(**values)


def validate(params: dict[str, Any]) -> Settings:
    """The typed sections of ``params``; raises `SettingsError` naming the first key that is wrong."""
    known = [*SECTIONS, *SCALARS, *FREE_FORM]
    unknown = sorted(k for k in params if k not in known and not k.startswith("_"))
    if unknown:
        raise SettingsError(f"unknown section(s) {unknown}; valid: {sorted(known)}")
    missing = [k for k in known if k not in params]
    if missing:
        raise SettingsError(f"missing section(s) {missing} (declare them in params.yaml)")
    out: dict[str, Any] = {name: section(cls, params[name], name) for name, cls in SECTIONS.items()}
    for name, hint in SCALARS.items():
        if not _is(params[name], hint):
            raise SettingsError(f"{name}: expected {_name(hint)}, got {params[name]!r}")
        out[name] = params[name]
    if not isinstance(params["datasets"], dict):
        raise SettingsError(f"datasets: expected a mapping of dataset name -> settings, got {params['datasets']!r}")
    return Settings(datasets=params["datasets"], **out)


def _is(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if get_origin(hint) in (Union, types.UnionType):
        return any(_is(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool) and hint is not bool:
        return False  # YAML's `yes` is not a number
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, get_origin(hint) or hint)


def _name(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_name(a) for a in get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
