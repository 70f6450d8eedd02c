"""Bad input gets a clear error naming the file and line; a corrupt image in a folder is skipped and counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from pipelines.cli import main
from pipelines.datasets import DatasetError, import_dataset
from pipelines.datasets.images import image_size
from tests.conftest import settings_file

BCCD_IMAGE = "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg"


def _yolo_folder(tmp: Path, shared: Path, labels: dict[str, str], images: int = 2) -> Path:
    """images/train/img{i}.jpg (real BCCD images, 640x480) with the given label file texts."""
    (tmp / "images/train").mkdir(parents=True)
    (tmp / "labels/train").mkdir(parents=True)
    for i in range(images):
        shutil.copy(shared / BCCD_IMAGE, tmp / f"images/train/img{i}.jpg")
    for stem, text in labels.items():
        (tmp / f"labels/train/{stem}.txt").write_text(text)
    return tmp


def _import_yolo(root: Path, **kwargs):
    return import_dataset("t", {"format": "yolo", "root": str(root), "labels": ["RBC", "WBC"]}, REPO_ROOT, **kwargs)


def _voc_folder(tmp: Path, shared: Path, name: str = "RBC", box=(10, 20, 110, 120), image: str = "a.jpg") -> Path:
    (tmp / "Annotations").mkdir(parents=True)
    (tmp / "JPEGImages").mkdir()
    shutil.copy(shared / BCCD_IMAGE, tmp / "JPEGImages/a.jpg")
    x1, y1, x2, y2 = box
    (tmp / "Annotations/a.xml").write_text(
        f"<annotation>\n<filename>{image}</filename>\n<size><width>640</width><height>480</height></size>\n"
        f"<object>\n<name>{name}</name>\n<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n</object>\n</annotation>\n"
    )
    return tmp


def _import_voc(root: Path, **kwargs):
    return import_dataset("t", {"format": "voc", "root": str(root), "labels": ["RBC", "WBC"]}, REPO_ROOT, **kwargs)


def test_a_label_line_with_4_numbers_names_file_and_line(tmp_path, shared):
    root = _yolo_folder(tmp_path, shared, {"img0": "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.2\n"})
    with pytest.raises(DatasetError, match=r"labels/train/img0\.txt:2: expected 5 numbers"):
        _import_yolo(root)


def test_an_unknown_class_id_names_file_and_line(tmp_path, shared):
    root = _yolo_folder(tmp_path, shared, {"img0": "7 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(DatasetError, match=r"img0\.txt:1: unknown class id '7'"):
        _import_yolo(root)


def test_an_unknown_class_name_names_file_and_line(tmp_path, shared):
    root = _voc_folder(tmp_path, shared, name="Neutrophil")
    with pytest.raises(DatasetError, match=r"Annotations/a\.xml:4: unknown class name 'Neutrophil'"):
        _import_voc(root)


def test_a_box_outside_the_image_names_file_and_line(tmp_path, shared):
    root = _voc_folder(tmp_path, shared, box=(600, 20, 700, 120))
    with pytest.raises(DatasetError, match=r"a\.xml:4: box \(600.0, 20.0, 700.0, 120.0\) outside the 640x480 image"):
        _import_voc(root)
    root = _yolo_folder(tmp_path / "y", shared, {"img0": "0 0.98 0.5 0.2 0.1\n"})
    with pytest.raises(DatasetError, match=r"img0\.txt:1: box .* outside the 640x480 image"):
        _import_yolo(root)


def test_a_missing_image_names_the_annotation_that_wants_it(tmp_path, shared):
    root = _voc_folder(tmp_path, shared, image="gone.jpg")
    with pytest.raises(DatasetError, match=r"Annotations/a\.xml:2: image not found: .*JPEGImages/gone\.jpg"):
        _import_voc(root)


def test_a_corrupt_jpeg_named_by_an_annotation_is_an_error(tmp_path, shared):
    root = _voc_folder(tmp_path, shared)
    jpeg = root / "JPEGImages/a.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:3000])  # truncated
    with pytest.raises(DatasetError, match=r"a\.xml:2: corrupt or unreadable image"):
        _import_voc(root)
    with pytest.raises(DatasetError, match=r"JPEGImages/a\.jpg: corrupt or unreadable image"):
        image_size(jpeg)


def test_a_corrupt_jpeg_in_a_folder_is_skipped_with_a_warning_and_counted(tmp_path, shared):
    import ultralytics.utils.patches  # noqa: F401 - patches Image.open: an unknown format tries the pi-heif plugin

    root = _yolo_folder(tmp_path, shared, {"img0": "0 0.5 0.5 0.1 0.1\n", "img1": "1 0.5 0.5 0.2 0.2\n"}, images=3)
    (root / "images/train/img1.jpg").write_bytes(b"not a jpeg at all")
    truncated = root / "images/train/img2.jpg"
    truncated.write_bytes(truncated.read_bytes()[:2000])
    manifest, log = _import_yolo(root)
    assert manifest.frames["frame_id"].tolist() == ["t/train/img0"]
    assert log.counts["unreadable image"] == 2
    assert any("img1.jpg" in s for s in log.skipped) and any("img2.jpg" in s for s in log.skipped)
    assert "2 frames skipped" in log.summary()


def test_lenient_mode_skips_the_bad_frame_and_keeps_the_rest(tmp_path, shared):
    root = _yolo_folder(tmp_path, shared, {"img0": "0 0.5 0.5 0.1\n", "img1": "1 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(DatasetError):
        _import_yolo(root)
    # Parsing errors are found while reading the label file, before the frame exists: strict only.
    root2 = _voc_folder(tmp_path / "v", shared, name="Neutrophil")
    manifest, log = _import_voc(root2, strict=False)
    assert len(manifest.frames) == 0 and log.counts["bad annotation"] == 1


def test_the_cli_prints_one_clear_line_and_exits_1(tmp_path, shared, monkeypatch, capsys):
    root = _voc_folder(tmp_path, shared, name="Neutrophil")
    params = settings_file(
        tmp_path / "params.yaml",
        dataset={"name": "t", "manifest_dir": str(tmp_path / "m")},
        datasets={"t": {"format": "voc", "root": str(root), "labels": ["RBC"]}},
    )
    monkeypatch.setenv("ALOD_PARAMS", str(params))
    assert main(["import"]) == 1
    err = capsys.readouterr().err
    assert "unknown class name 'Neutrophil'" in err and "a.xml:4" in err and "Traceback" not in err
