"""A deterministic train / val / test split for datasets that bring none.

Each frame goes to a side by a hash of its group and the seed, so the split is the same on every
run and machine and does not change when frames are added. The group is the frame's video when it
has one (whole videos go to one side: frames of one video on both sides would leak), else the frame.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def unit_interval(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from a string, the same everywhere (not Python's salted hash)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(frames: pd.DataFrame, val: float, test: float, seed: int = 0) -> pd.Series:
    """The split of each frame: ``test`` for a fraction ``test`` of the groups, ``val`` for ``val``, else train."""
    if not (0 <= val and 0 <= test and val + test < 1):
        raise ValueError(f"split fractions need 0 <= val, test and val + test < 1; got val={val}, test={test}")
    videos = frames["video"].fillna("").astype(str) if "video" in frames else pd.Series("", index=frames.index)
    groups = videos.where(videos != "", "frame:" + frames["frame_id"].astype(str))
    u = groups.map(lambda group: unit_interval(group, seed))
    return pd.Series(["test" if x < test else "val" if x < test + val else "train" for x in u], index=frames.index)


def needs_split(frames: pd.DataFrame) -> bool:
    """True when the dataset brought no split of its own (every frame is in train)."""
    return bool(len(frames)) and set(frames["split"]) == {"train"}
