"""Box-level settings: `params.yaml`'s ``box_level`` section (the benchmark lets a strategy override it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class BoxSettings:
    """Box-level settings: `params.yaml` ``box_level``, overridden by a strategy spec's ``box``."""

    iou_snap: float = 0.5  # a query with IoU >= this to a ground-truth box snaps to it, else it is background
    accept_iou: float = 0.9  # a snapped query of the right class at least this close counts as accepted
    noisy_weight: float = 0.5  # lambda_d: loss weight of the noisy (unqueried predicted) boxes
    noisy_conf: float | None = None  # predicted boxes at or above this become noisy labels; None: budget threshold
    cover_iou: float = 0.5  # a predicted box this close to an earlier answer is neither asked again nor noisy
    loss_normalisation: str = "per_group"  # per_group: Eq. 3 of the box-level paper; shared: the earlier rule
    train_background_answers: bool = True  # an image whose answers are all rejections trains (paper); False: not

    @classmethod
    def resolve(cls, params: dict[str, Any], spec: dict[str, Any]) -> BoxSettings:
        merged = {**(params.get("box_level") or {}), **(spec.get("box") or {})}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown box-level settings {unknown}; valid: {sorted(known)}")
        return cls(**merged)
