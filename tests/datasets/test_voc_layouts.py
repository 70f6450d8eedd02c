"""Pascal VOC in the layouts people have: all give the same frames and boxes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from pipelines.datasets import DatasetError, import_dataset

BCCD = "data/bccd/BCCD"
STEMS = ["BloodImage_00000", "BloodImage_00001", "BloodImage_00002"]


def copy_voc(shared: Path, root: Path, annotations: str, images: str) -> Path:
    (root / annotations).mkdir(parents=True, exist_ok=True)
    (root / images).mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        shutil.copy(shared / BCCD / "Annotations" / f"{stem}.xml", root / annotations / f"{stem}.xml")
        shutil.copy(shared / BCCD / "JPEGImages" / f"{stem}.jpg", root / images / f"{stem}.jpg")
    return root


def boxes_of(config: dict) -> list[tuple]:
    manifest, _ = import_dataset(
        "t", {"format": "voc", "labels": ["RBC", "WBC", "Platelets"], "degenerate_boxes": "drop", **config}, REPO_ROOT
    )
    assert sorted(manifest.frames["frame_id"]) == [f"t/{s}" for s in STEMS]
    return sorted(manifest.boxes[["frame_id", "label", "x1", "y1", "x2", "y2"]].itertuples(index=False))


@pytest.mark.parametrize(
    ("annotations", "images", "extra"),
    [
        ("annotations", "images", {}),  # the lower-case layout
        ("flat", "flat", {}),  # XML beside the images
        ("my_xml", "my_jpgs", {"annotations": "my_xml", "images": "my_jpgs"}),  # named in the settings
    ],
)
def test_every_common_layout_reads_like_the_original(tmp_path, shared, annotations, images, extra):
    original = boxes_of({"root": str(copy_voc(shared, tmp_path / "orig", "Annotations", "JPEGImages"))})
    root = copy_voc(shared, tmp_path / "other", annotations, images)
    if annotations == "flat":
        root = root / "flat"
    extra = {k: str(root / v) for k, v in extra.items()}
    assert boxes_of({"root": str(root), **extra}) == original
    assert len(original) > 10


def test_a_folder_with_no_annotations_says_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetError, match="Annotations / annotations"):
        import_dataset("t", {"format": "voc", "root": str(tmp_path), "labels": ["RBC"]}, REPO_ROOT)
