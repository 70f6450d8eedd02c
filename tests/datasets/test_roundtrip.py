"""Label Studio JSON and COCO json survive a round trip through the manifest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.settings import REPO_ROOT
from pipelines.datasets import import_dataset
from pipelines.datasets.readers.labelstudio import to_labelstudio_tasks


@pytest.fixture(scope="module")
def bccd(params):
    manifest, _ = import_dataset("bccd", params["datasets"]["bccd"], REPO_ROOT, verify="header")
    return manifest


def _normalized(manifest) -> pd.DataFrame:
    b = manifest.boxes.merge(manifest.frames[["frame_id", "width", "height"]], on="frame_id")
    out = pd.DataFrame({"frame_id": b.frame_id, "label": b.label})
    for col, size in (("x1", "width"), ("x2", "width"), ("y1", "height"), ("y2", "height")):
        out[col] = b[col] / b[size]
    return out.sort_values(["frame_id", "x1", "y1", "x2", "y2"]).reset_index(drop=True)


def test_labelstudio_export_roundtrip_is_lossless_to_1e6(bccd, shared, tmp_path):
    document_root = shared / "data"
    tasks = to_labelstudio_tasks(bccd, REPO_ROOT, document_root=document_root)
    assert tasks[0]["data"]["image"].startswith("/data/local-files/?d=bccd/BCCD/JPEGImages/")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": i + 1, **t} for i, t in enumerate(tasks)]))

    config = {
        "format": "labelstudio",
        "json": str(export),
        "labels": ["RBC", "WBC", "Platelets"],
        "document_root": str(document_root),
    }
    back, log = import_dataset("bccd", config, REPO_ROOT, verify="header")

    assert log.boxes_read == len(bccd.boxes) == len(back.boxes)
    assert back.frames["frame_id"].tolist() == bccd.frames["frame_id"].tolist()
    assert back.frames["image"].tolist() == bccd.frames["image"].tolist()
    assert back.frames["split"].tolist() == bccd.frames["split"].tolist()
    a, b = _normalized(bccd), _normalized(back)
    assert a[["frame_id", "label"]].equals(b[["frame_id", "label"]])
    assert np.abs(a[["x1", "y1", "x2", "y2"]].to_numpy() - b[["x1", "y1", "x2", "y2"]].to_numpy()).max() < 1e-6


def test_labelstudio_reader_takes_the_latest_valid_annotation(tmp_path, shared):
    image = shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg"

    def region(x: float, label: str) -> dict:
        return {
            "type": "rectanglelabels",
            "original_width": 640,
            "original_height": 480,
            "value": {"x": x, "y": 10, "width": 10, "height": 10, "rectanglelabels": [label]},
        }

    task = {
        "id": 7,
        "data": {"image": str(image), "scene": "lab"},
        "annotations": [
            {"id": 1, "updated_at": "2026-01-01", "result": [region(1, "RBC")]},
            {"id": 2, "updated_at": "2026-03-01", "result": [region(50, "WBC")], "was_cancelled": True},
            {"id": 3, "updated_at": "2026-02-01", "result": [region(20, "WBC"), region(30, "RBC")]},
        ],
    }
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task]))
    manifest, _ = import_dataset(
        "ls", {"format": "labelstudio", "json": str(export), "labels": ["RBC", "WBC"]}, REPO_ROOT
    )
    assert manifest.boxes["label"].tolist() == ["WBC", "RBC"]
    assert manifest.boxes["x1"].tolist() == pytest.approx([128.0, 192.0])
    meta = json.loads(manifest.frames["meta"].iloc[0])
    assert meta == {"scene": "lab", "ls_task_id": 7, "annotated": True, "ls_annotation_id": 3}
    assert manifest.frames["frame_id"].iloc[0] == "ls/task-7"


def test_coco_json_of_coco128_val_imports_the_same_boxes(params, shared, tmp_path):
    yolo, _ = import_dataset("coco128", params["datasets"]["coco128"], REPO_ROOT, verify="header")
    val = yolo.frames[yolo.frames["split"] == "val"].reset_index(drop=True)
    images = [
        {"id": i, "file_name": f"{fid.split('/')[-1]}.jpg", "width": int(w), "height": int(h)}
        for i, (fid, w, h) in enumerate(zip(val.frame_id, val.width, val.height, strict=True))
    ]
    index = {fid: i for i, fid in enumerate(val.frame_id)}
    vb = yolo.boxes[yolo.boxes["frame_id"].isin(index)]
    annotations = [
        {
            "id": k,
            "image_id": index[b.frame_id],
            "category_id": int(b.class_id) + 1,
            "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
        }
        for k, b in enumerate(vb.itertuples(index=False))
    ]
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(yolo.labels.names)]
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))

    config = {
        "format": "coco",
        "json": str(path),
        "images": str(shared / "data/coco128/images/val2017"),
        "labels": "coco80",
        "split": "val",
    }
    coco, log = import_dataset("coco128/val2017", config, REPO_ROOT, verify="header")
    assert len(coco.frames) == 128 and len(coco.boxes) == 898 == log.boxes_read
    assert coco.frames["frame_id"].tolist() == val["frame_id"].tolist()
    assert np.allclose(coco.boxes[["x1", "y1", "x2", "y2"]].to_numpy(), vb[["x1", "y1", "x2", "y2"]].to_numpy())
