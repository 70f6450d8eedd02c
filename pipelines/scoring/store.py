"""The scored pool on disk: one Parquet shard per chunk of frames, one row per frame.

Why Parquet: the manifest already is Parquet (pyarrow is a dependency, zarr is not);
a shard is one self-describing, zstd-compressed file whose key-value metadata carries
the class names and the fingerprint of the model and settings that produced it; list
columns hold each frame's variable number of boxes and map straight onto the CSR
arrays of `ScoredPool`; an error row is just a row with ``error`` set; and pandas or
DuckDB can inspect a shard directly. npz has no schema, no per-row errors and slow
zip compression; one big file of any kind could not be resumed.

Resuming: shards are written to a temporary name and renamed, so a shard that exists
is complete. A rerun skips shard ``k`` when it holds exactly the frames of chunk ``k``
and was made with the same fingerprint; anything else is scored again. ``summary.json``
is removed when a run starts and written when it ends, so a reader can tell a finished
pool from an interrupted one.

Box embeddings are stored as float16 (they are unit-norm vectors compared by cosine or
Euclidean distance; half precision halves the largest column). Everything else is float32
or integer, so ``box_conf == box_probs.max(axis=1)`` survives the round trip exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from strategies.pool import ScoredPool

if TYPE_CHECKING:  # reading a scored pool needs no torch
    from core.detector import ImageDetections

FORMAT_VERSION = 1
META_KEY = b"alod.score"
SUMMARY = "summary.json"
_SHARD_GLOB = "shard-*.parquet"

FRAME_COLUMNS: dict[str, pa.DataType] = {
    "frame_id": pa.string(),
    "image": pa.string(),
    "video": pa.string(),
    "frame": pa.int64(),
    "split": pa.string(),
    "meta": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "error": pa.string(),
}
# list column -> (element type, ImageDetections attribute); each row is one frame's flattened array
LIST_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "box_xyxy": (pa.float32(), "xyxy"),
    "box_conf": (pa.float32(), "conf"),
    "box_cls": (pa.int32(), "cls"),
    "box_probs": (pa.float32(), "probs"),
    "box_embeddings": (pa.float16(), "embeddings"),
    "image_embedding": (pa.float32(), "image_embedding"),
    "divergence": (pa.float32(), "divergence"),
    "flip_xyxy": (pa.float32(), "flip_xyxy"),
    "flip_probs": (pa.float32(), "flip_probs"),
}
SCHEMA = pa.schema(
    [pa.field(k, t) for k, t in FRAME_COLUMNS.items()]
    + [pa.field("divergence_h", pa.int32()), pa.field("divergence_w", pa.int32())]
    + [pa.field(k, pa.list_(t)) for k, (t, _) in LIST_COLUMNS.items()]
)


@dataclass
class FrameRecord:
    """One row: the manifest fields of a frame plus its detections, or the reason it has none."""

    frame_id: str
    image: str
    video: str = ""
    frame: int = 0
    split: str = ""
    meta: str = "{}"
    width: int = 0
    height: int = 0
    detections: ImageDetections | None = None
    error: str | None = None


def fingerprint(settings: dict[str, Any]) -> str:
    """Hash of everything that changes the scores (model file contents included)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    weights = settings.get("weights")
    if weights and Path(weights).exists():
        root = Path(weights)
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in paths:
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"shard-{index:05d}.parquet"


def _list_column(values: Sequence[np.ndarray | None], dtype: pa.DataType) -> pa.Array:
    lengths = np.array([0 if v is None else v.size for v in values], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    present = [np.ravel(v) for v in values if v is not None and v.size]
    flat = np.concatenate(present) if present else np.zeros(0)
    mask = pa.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.astype(dtype.to_pandas_dtype())), mask=mask)


def records_to_table(records: Sequence[FrameRecord], meta: dict[str, Any]) -> pa.Table:
    columns: dict[str, pa.Array] = {
        name: pa.array([getattr(r, name) for r in records], type=t) for name, t in FRAME_COLUMNS.items()
    }
    dets = [r.detections for r in records]
    maps = [None if d is None else d.divergence for d in dets]
    columns["divergence_h"] = pa.array([None if m is None else m.shape[0] for m in maps], type=pa.int32())
    columns["divergence_w"] = pa.array([None if m is None else m.shape[1] for m in maps], type=pa.int32())
    for name, (dtype, attr) in LIST_COLUMNS.items():
        columns[name] = _list_column([None if d is None else getattr(d, attr) for d in dets], dtype)
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def write_shard(path: Path, records: Sequence[FrameRecord], meta: dict[str, Any]) -> None:
    """Write atomically: a reader or a rerun never sees a half-written shard."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(records_to_table(records, meta), tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_meta(path: Path) -> dict[str, Any]:
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def shard_is_done(path: Path, frame_ids: Sequence[str], fp: str) -> bool:
    """True when ``path`` holds exactly ``frame_ids`` scored with fingerprint ``fp``."""
    if not path.exists():
        return False
    try:
        if shard_meta(path).get("fingerprint") != fp:
            return False
        stored = pq.read_table(path, columns=["frame_id"]).column("frame_id").to_pylist()
    except (OSError, pa.ArrowException, ValueError):
        return False  # unreadable: score it again
    return stored == list(frame_ids)


def shard_counts(path: Path) -> tuple[int, int]:
    """(boxes, error rows) of a finished shard."""
    table = pq.read_table(path, columns=["box_conf", "error"])
    boxes = pc.sum(pc.list_value_length(table.column("box_conf"))).as_py() or 0
    return int(boxes), table.column("error").length() - table.column("error").null_count


def prepare_out_dir(out_dir: Path) -> None:
    """Mark the directory as unfinished and drop temporary files left by a killed run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY).unlink(missing_ok=True)
    for tmp in out_dir.glob(".shard-*.tmp-*"):
        tmp.unlink(missing_ok=True)


def finish_out_dir(out_dir: Path, num_shards: int, summary: dict[str, Any]) -> None:
    """Remove shards beyond this pool (from an earlier, larger one) and write the summary last."""
    for path in out_dir.glob(_SHARD_GLOB):
        if int(path.stem.split("-")[1]) >= num_shards:
            path.unlink()
    tmp = out_dir / f".{SUMMARY}.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / SUMMARY)


def read_summary(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else None


def _read_table(out_dir: Path, allow_partial: bool) -> tuple[pa.Table, dict[str, Any]]:
    if not allow_partial and read_summary(out_dir) is None:
        raise FileNotFoundError(f"{out_dir}: no finished scoring run (rerun `alod score` to resume it)")
    paths = sorted(out_dir.glob(_SHARD_GLOB))
    if not paths:
        return SCHEMA.empty_table(), read_summary(out_dir) or {}
    metas = [shard_meta(p) for p in paths]
    if len({m.get("fingerprint") for m in metas}) > 1:
        raise ValueError(f"{out_dir}: shards come from different models or settings; rerun `alod score`")
    return pa.concat_tables([pq.read_table(p) for p in paths]), metas[0]


def _column(table: pa.Table, name: str) -> pa.ListArray:
    return table.column(name).combine_chunks()


def _values(table: pa.Table, name: str, dtype: type = np.float32) -> np.ndarray:
    """The flattened elements of a list column."""
    return _column(table, name).flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _offsets(table: pa.Table, name: str) -> np.ndarray:
    """(N + 1,) element offsets of a list column, starting at 0."""
    offsets = _column(table, name).offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0]


def _rows(values: np.ndarray, count: int, default_width: int = 0) -> np.ndarray:
    """``values`` as ``count`` rows (the width follows from the sizes)."""
    width = values.size // count if count else default_width
    return values.reshape(count, width)


def _metadata(meta: Iterable[str | None]) -> dict[str, np.ndarray]:
    parsed = [json.loads(m) if m else {} for m in meta]
    parsed = [p if isinstance(p, dict) else {} for p in parsed]
    keys = sorted({k for p in parsed for k in p})
    return {k: np.array([p.get(k) for p in parsed], dtype=object) for k in keys}


def read_scored_pool(out_dir: str | Path, *, allow_partial: bool = False) -> ScoredPool:
    """The scored pool of a finished run; frames whose image failed are left out (see read_score_errors)."""
    table, meta = _read_table(Path(out_dir), allow_partial)
    if table.column("error").null_count < table.num_rows:  # filtering copies every column: only when needed
        table = table.filter(pc.is_null(table.column("error")))
    names = tuple(meta.get("class_names", ()))
    n = table.num_rows
    box_offsets = _offsets(table, "box_conf")
    m = int(box_offsets[-1])
    probs = _rows(_values(table, "box_probs"), m, len(names))

    divergence = None
    if n and table.column("divergence").null_count == 0:
        flat, offsets = _values(table, "divergence"), _offsets(table, "divergence")
        hs, ws = table.column("divergence_h").to_pylist(), table.column("divergence_w").to_pylist()
        divergence = tuple(flat[offsets[i] : offsets[i + 1]].reshape(hs[i], ws[i]) for i in range(n))

    flip: dict[str, np.ndarray | None] = {"flip_offsets": None, "flip_xyxy": None, "flip_probs": None}
    if n and table.column("flip_xyxy").null_count == 0:
        flip_offsets = _offsets(table, "flip_xyxy") // 4
        count = int(flip_offsets[-1])
        flip = {
            "flip_offsets": flip_offsets,
            "flip_xyxy": _rows(_values(table, "flip_xyxy"), count, 4),
            "flip_probs": _rows(_values(table, "flip_probs"), count, probs.shape[1]),
        }

    return ScoredPool(
        frame_ids=np.array(table.column("frame_id").to_pylist(), dtype=object),
        box_offsets=box_offsets,
        box_xyxy=_rows(_values(table, "box_xyxy"), m, 4),
        box_conf=_values(table, "box_conf"),
        box_probs=probs,
        box_embeddings=_rows(_values(table, "box_embeddings"), m),
        image_embeddings=_rows(_values(table, "image_embedding"), n),
        image_sizes=np.stack([table.column("width").to_numpy(), table.column("height").to_numpy()], 1)
        .astype(np.int32)
        .reshape(n, 2),
        class_names=names,
        videos=np.array(table.column("video").to_pylist(), dtype=object),
        frame_index=table.column("frame").to_numpy().astype(np.int64),
        divergence_maps=divergence,
        metadata=_metadata(table.column("meta").to_pylist()),
        **flip,
    )


def read_score_errors(out_dir: str | Path) -> pd.DataFrame:
    """Frames that could not be scored: frame_id, image and the reason."""
    table, _ = _read_table(Path(out_dir), allow_partial=True)
    table = table.select(["frame_id", "image", "error"])
    return table.filter(pc.is_valid(table.column("error"))).to_pandas()
