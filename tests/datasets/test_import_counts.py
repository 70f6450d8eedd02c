"""Importing each shared dataset yields the counts its README states."""

from __future__ import annotations

import pytest

from core.settings import REPO_ROOT
from pipelines.datasets import import_dataset


@pytest.fixture(scope="module")
def imported(params, shared):
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = import_dataset(name, params["datasets"][name], REPO_ROOT)
        return cache[name]

    return get


def test_bccd_has_364_images_4888_boxes_3_classes(imported):
    manifest, log = imported("bccd")
    assert len(manifest.frames) == 364
    assert log.boxes_read == 4888
    # Two annotations are zero-area points (BloodImage_00338, _00343): dropped, each with a warning.
    assert len(manifest.boxes) == 4886 and log.counts["box dropped"] == 2
    assert any("BloodImage_00338.xml:158" in w for w in log.warnings)
    assert manifest.labels.names == ("RBC", "WBC", "Platelets")
    assert manifest.boxes["label"].value_counts().to_dict() == {"RBC": 4153, "WBC": 372, "Platelets": 361}
    assert manifest.frames["split"].value_counts().to_dict() == {"train": 205, "val": 87, "test": 72}


def test_coco128_has_256_images_and_1839_label_lines(imported):
    manifest, log = imported("coco128")
    assert len(manifest.frames) == 256
    assert manifest.frames["split"].value_counts().to_dict() == {"train": 128, "val": 128}
    # Two train label files (000000000656, 000000000659: 12 boxes) have no image: reported, not imported.
    assert len(manifest.boxes) == 1827 and log.orphan_boxes == 12
    assert len(manifest.boxes) + log.orphan_boxes == 1839
    assert log.counts["orphan label"] == 2
    val_ids = set(manifest.frames.loc[manifest.frames["split"] == "val", "frame_id"])
    assert manifest.boxes["frame_id"].isin(val_ids).sum() == 898


def test_tud_campus_is_one_video_of_71_frames_and_359_boxes(imported):
    manifest, _ = imported("tud_campus")
    assert len(manifest.frames) == 71 and len(manifest.boxes) == 359
    assert set(manifest.frames["video"]) == {"TUD-Campus"}
    assert sorted(manifest.frames["frame"]) == list(range(1, 72))
    assert manifest.frames["frame_id"].iloc[0] == "tud_campus/TUD-Campus/000001"


def test_pets09_layout_has_107_frames_and_620_boxes(imported):
    manifest, _ = imported("pets09")
    assert len(manifest.frames) == 107 and len(manifest.boxes) == 620
    assert (manifest.frames[["width", "height"]].drop_duplicates().values.tolist()) == [[768, 576]]


def test_mot17_sequences_become_videos_keeping_only_pedestrians(imported):
    manifest, _ = imported("mot17_mini")
    assert manifest.frames["video"].nunique() == 7 and len(manifest.frames) == 39
    assert set(manifest.boxes["label"]) == {"pedestrian"}
    assert 0 < len(manifest.boxes) < 1500  # other classes and flag-0 rows are excluded


def test_boxes_are_inside_their_images(imported):
    for name in ("bccd", "coco128", "tud_campus", "pets09", "mot17_mini"):
        manifest, _ = imported(name)
        b = manifest.boxes.merge(manifest.frames[["frame_id", "width", "height"]], on="frame_id")
        assert (b.x1 >= 0).all() and (b.y1 >= 0).all(), name
        assert (b.x2 <= b.width).all() and (b.y2 <= b.height).all(), name
        assert ((b.x2 > b.x1) & (b.y2 > b.y1)).all(), name


def test_frame_ids_are_stable_across_reimports(params):
    first, _ = import_dataset("tud_campus", params["datasets"]["tud_campus"], REPO_ROOT, verify="header")
    again, _ = import_dataset("tud_campus", params["datasets"]["tud_campus"], REPO_ROOT, verify="header")
    assert first.frames["frame_id"].tolist() == again.frames["frame_id"].tolist()
    assert first.boxes.equals(again.boxes)
