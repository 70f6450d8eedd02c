"""The simulation's stand-in for annotators: an annotation store, and an oracle that answers from ground truth.

The store plays the part of the Label Studio project: `push` writes the oracle's answers into
it, `export` reads it. Ground truth lives in the manifest's gt_boxes.parquet and reaches
training and selection only through answered queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.cycle.layout import write_parquet
from pipelines.datasets.manifest import BOX_COLUMNS, Manifest

FRAME_COLUMNS = ["frame_id", "cycle", "task_id", "annotation_id"]


@dataclass(frozen=True)
class Answers:
    """Labeled frames (with the cycle that asked for them) and their boxes."""

    frames: pd.DataFrame  # FRAME_COLUMNS
    boxes: pd.DataFrame  # BOX_COLUMNS + cycle

    @classmethod
    def empty(cls) -> Answers:
        return cls(pd.DataFrame(columns=FRAME_COLUMNS), pd.DataFrame(columns=[*BOX_COLUMNS, "cycle"]))


def oracle_answer(manifest: Manifest, frame_ids: list[str], cycle: int) -> Answers:
    """The ground-truth boxes of the queried frames, as an annotator would draw them."""
    known = set(manifest.frames["frame_id"])
    unknown = [f for f in frame_ids if f not in known]
    if unknown:
        raise ValueError(f"the oracle was asked about frames not in the manifest: {unknown[:5]}")
    frames = pd.DataFrame(
        {"frame_id": frame_ids, "cycle": cycle, "task_id": pd.NA, "annotation_id": pd.NA}, columns=FRAME_COLUMNS
    )
    boxes = manifest.boxes_of(frame_ids).assign(cycle=cycle)
    return Answers(frames, boxes.reset_index(drop=True))


class AnnotationStore:
    """Answers on disk (frames.parquet + boxes.parquet). Adding is an upsert by frame id, so a
    push that is rerun after a crash neither loses nor duplicates anything."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self) -> Answers:
        frames, boxes = self.folder / "frames.parquet", self.folder / "boxes.parquet"
        if not frames.exists():
            return Answers.empty()
        return Answers(pd.read_parquet(frames), pd.read_parquet(boxes))

    def add(self, answers: Answers) -> Answers:
        old = self.load()
        new_ids = set(answers.frames["frame_id"])
        frames = pd.concat([old.frames[~old.frames["frame_id"].isin(new_ids)], answers.frames], ignore_index=True)
        boxes = pd.concat([old.boxes[~old.boxes["frame_id"].isin(new_ids)], answers.boxes], ignore_index=True)
        merged = Answers(frames, boxes)
        # boxes first: a crash between the two writes leaves boxes of frames not yet listed, which
        # export ignores; the rerun then writes both again.
        write_parquet(boxes, self.folder / "boxes.parquet")
        write_parquet(frames, self.folder / "frames.parquet")
        return merged


INITIAL_SELECTIONS = ("random", "class_balanced")


def initial_frames(
    manifest: Manifest, count: int, seed: int, split: str = "train", selection: str = "random"
) -> list[str]:
    """A seeded starting set from one split: ``random`` (most papers' random initial labeled set) or
    ``class_balanced`` (the uncertainty-aggregation paper's: `class_balanced_frames`)."""
    if selection not in INITIAL_SELECTIONS:
        raise ValueError(f"initial selection must be one of {INITIAL_SELECTIONS}, got {selection!r}")
    ids = manifest.frames.loc[manifest.frames["split"] == split, "frame_id"].to_numpy()
    if count > len(ids):
        raise ValueError(f"cannot seed {count} frames: split {split!r} has {len(ids)}")
    rng = np.random.default_rng(seed)
    if selection == "class_balanced":
        picked = set(class_balanced_frames(ids.astype(str), manifest.boxes_of(ids), count, rng))
        return [str(f) for f in ids if str(f) in picked]
    return [str(f) for f in ids[np.sort(rng.choice(len(ids), size=count, replace=False))]]


def class_balanced_frames(ids: np.ndarray, boxes: pd.DataFrame, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` frames whose classes are as balanced as the pool allows: each turn the class with the
    fewest boxes in the set so far (ties at random) adds a random frame that contains it; when no
    class has frames left, random frames fill the rest (frames without boxes included)."""
    frames_of: dict[int, list[str]] = {}
    for cls, group in boxes.groupby("class_id"):
        frames_of[int(cls)] = [str(f) for f in rng.permutation(group["frame_id"].astype(str).unique())]
    per_frame = boxes.groupby(["frame_id", "class_id"]).size()
    counts = dict.fromkeys(frames_of, 0)
    picked: list[str] = []
    taken: set[str] = set()
    while len(picked) < count:
        open_classes = [c for c in frames_of if any(f not in taken for f in frames_of[c])]
        if not open_classes:
            rest = [str(f) for f in rng.permutation(ids) if str(f) not in taken]
            picked.extend(rest[: count - len(picked)])
            break
        lowest = min(counts[c] for c in open_classes)
        cls = int(rng.choice([c for c in open_classes if counts[c] == lowest]))
        frame = next(f for f in frames_of[cls] if f not in taken)
        picked.append(frame)
        taken.add(frame)
        for (_, c), n in per_frame.loc[[frame]].items():
            counts[int(c)] = counts.get(int(c), 0) + int(n)
    return picked
