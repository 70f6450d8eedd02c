"""Where each stage of a cycle reads and writes, from the settings (`cycle:` in params.yaml)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import resolve_path


@dataclass(frozen=True)
class CycleLayout:
    root: Path  # the folder of params.yaml
    manifest: Path  # alod import: frames, ground truth (oracle only), label map
    annotations: Path  # simulation: the annotation store the oracle answers into
    snapshot: Path  # export: the labeled set of this cycle (versioned by DVC)
    model: Path  # train: this cycle's model and the previous one (warm start)
    metrics: Path  # evaluate: this cycle's metrics
    history: Path  # evaluate: one row per cycle, for plots
    scores: Path  # score: the scored pool
    selection: Path  # select: ranked queries, and frames blocked by the temporal rule
    push: Path  # push: the receipt of what was sent

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CycleLayout:
        cycle = params["cycle"]
        base = resolve_path(params, cycle["dir"])
        assert base is not None
        return cls(
            root=Path(params["_root"]),
            manifest=resolve_path(params, params["dataset"]["manifest_dir"]),  # type: ignore[arg-type]
            annotations=base / "annotations",
            snapshot=base / "snapshot",
            model=base / "model",
            metrics=base / "metrics",
            history=base / "history",
            scores=resolve_path(params, params["score"]["out_dir"]),  # type: ignore[arg-type]
            selection=base / "selection",
            push=base / "push",
        )


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temp file + rename): a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def write_parquet(df: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value)}")
