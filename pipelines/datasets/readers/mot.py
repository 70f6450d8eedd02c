"""MOTChallenge sequences: ``<seq>/img1/%06d.jpg`` (or ``img/frame_%04d.jpg`` as in PETS) + ``gt/gt.txt``.

gt.txt rows are ``frame, id, x, y, w, h, flag, ...`` in pixels with 1-based frames. Rows with
9 columns are MOT16/17 (flag 0 = ignore, column 8 = class: only ``classes`` are kept); other
rows (MOT15, PETS) are all pedestrians. Boxes crossing the frame border are clipped to it.
"""

from __future__ import annotations

import configparser
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetError
from ..formats import Source, register_format
from ..images import list_images
from ..manifest import ManifestBuilder, SourceBox

PEDESTRIAN = "pedestrian"


def read_mot(
    root: Path, builder: ManifestBuilder, dataset: str, split: str = "train", classes: Sequence[int] = (1,)
) -> None:
    """``root`` is one sequence folder or a folder of sequences."""
    sequences = [root] if (root / "gt").is_dir() else sorted(d for d in root.iterdir() if (d / "gt").is_dir())
    if not sequences:
        raise DatasetError(root, "no MOTChallenge sequence here (expected gt/gt.txt)")
    clip, builder.clip_boxes = builder.clip_boxes, True
    try:
        for seq in sequences:
            _read_sequence(seq, builder, dataset, split, set(classes))
    finally:
        builder.clip_boxes = clip


def _read_sequence(seq: Path, builder: ManifestBuilder, dataset: str, split: str, classes: set[int]) -> None:
    info = _seqinfo(seq)
    img_dir = seq / info.get("imdir", "img1" if (seq / "img1").is_dir() else "img")
    if not img_dir.is_dir():
        raise DatasetError(seq, f"no image folder {img_dir.name}/")
    boxes = _read_gt(seq / "gt" / "gt.txt", classes)
    images = {_frame_number(p): p for p in list_images(img_dir)}
    meta = {k: v for k, v in info.items() if k in ("framerate", "seqlength")}
    for frame in sorted(images):
        builder.add_frame(
            f"{dataset}/{seq.name}/{frame:06d}",
            images[frame],
            boxes.pop(frame, []),
            split=split,
            video=seq.name,
            frame=frame,
            meta=meta,
        )
    for frame in sorted(boxes):
        builder.log.warn(
            f"{seq / 'gt' / 'gt.txt'}: {len(boxes[frame])} boxes for frame {frame} with no image", "orphan box"
        )


def _read_gt(gt: Path, classes: set[int]) -> dict[int, list[SourceBox]]:
    if not gt.exists():
        raise DatasetError(gt, "ground truth file not found")
    out: dict[int, list[SourceBox]] = defaultdict(list)
    for line_no, line in enumerate(gt.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cols = [float(v) for v in line.split(",")]
        except ValueError as e:
            raise DatasetError(gt, f"non-numeric value in {line.strip()!r}", line_no) from e
        if len(cols) < 6:
            raise DatasetError(gt, f"expected frame,id,x,y,w,h,... got {len(cols)} values", line_no)
        if len(cols) == 9 and (cols[6] == 0 or int(cols[7]) not in classes):
            continue
        frame, x, y, w, h = int(cols[0]), cols[2], cols[3], cols[4], cols[5]
        out[frame].append(SourceBox(x, y, x + w, y + h, PEDESTRIAN, (str(gt), line_no)))
    return out


def _seqinfo(seq: Path) -> dict[str, str]:
    ini = seq / "seqinfo.ini"
    if not ini.exists():
        return {}
    parser = configparser.ConfigParser()
    parser.read(ini)
    return dict(parser["Sequence"]) if parser.has_section("Sequence") else {}


def _frame_number(image: Path) -> int:
    digits = re.findall(r"\d+", image.stem)
    if not digits:
        raise DatasetError(image, "cannot tell the frame number from the file name")
    return int(digits[-1])


@register_format("mot")
def read_mot_source(source: Source) -> None:
    read_mot(source.path("root"), source.builder, source.name, source.split, source.config.get("classes", (1,)))
