"""Training on several GPUs is ultralytics' own DDP: ``train.device: 0,1`` must reach it as the string "0,1"."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core.settings import REPO_ROOT, load_params
from pipelines.cycle import yolo_ops


def train_device_file(tmp_path: Path, written: str) -> Path:
    """The repository's params.yaml with the train section's device written as ``written`` (YAML text)."""
    text = (REPO_ROOT / "params.yaml").read_text()
    head, train = text.split("\ntrain:\n", 1)
    train = re.sub(r"^  device: [^#\n]*", f"  device: {written} ", train, count=1, flags=re.M)
    path = tmp_path / "params.yaml"
    path.write_text(f"{head}\ntrain:\n{train}")
    return path


@pytest.mark.parametrize("written", ["0,1", '"0,1"', "'0,1'"])
def test_params_yaml_gives_the_device_list_as_a_string(tmp_path: Path, written: str) -> None:
    path = train_device_file(tmp_path, written)
    assert load_params(path, environ={})["train"]["device"] == "0,1"


def test_the_environment_override_gives_the_same_string(tmp_path: Path) -> None:
    path = train_device_file(tmp_path, "auto")
    params = load_params(path, environ={"ALOD__TRAIN__DEVICE": "0,1,2,3"})
    assert params["train"]["device"] == "0,1,2,3"


class FakeYOLO:
    """Stands in for ultralytics.YOLO: records what `train` is called with."""

    calls: list[dict] = []

    def __init__(self, weights: str) -> None:
        self.weights = weights

    def add_callback(self, event: str, fn: object) -> None:
        pass

    def train(self, **kwargs: object) -> None:
        FakeYOLO.calls.append(kwargs)
        last = Path(str(kwargs["project"])) / str(kwargs["name"]) / "last.pt"
        last.parent.mkdir(parents=True, exist_ok=True)
        last.write_bytes(b"weights")
        self.trainer = SimpleNamespace(last=last)


@pytest.mark.parametrize(("device", "passed"), [("0,1", "0,1"), ("0,1,2,3", "0,1,2,3"), (0, 0), ("auto", None)])
def test_train_yolo_hands_the_device_to_ultralytics_unchanged(tmp_path, monkeypatch, device, passed) -> None:
    import ultralytics

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    FakeYOLO.calls.clear()
    out = tmp_path / "model.pt"
    yolo_ops.train_yolo(
        tmp_path / "data.yaml", "w.pt", out, tmp_path / "runs" / "c1", epochs=1, imgsz=64, batch=16, device=device
    )
    assert FakeYOLO.calls[0]["device"] == passed
    assert FakeYOLO.calls[0]["batch"] == 16  # ultralytics splits it across the GPUs (16 // 2 per rank)
    assert out.read_bytes() == b"weights"


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has 2 GPUs: the DDP run would start")
def test_ultralytics_itself_receives_the_two_gpu_request(tmp_path: Path, shared: Path) -> None:
    """Without two GPUs, ultralytics' device check refuses the request and quotes the string it was given."""
    with pytest.raises(ValueError, match=r"Invalid CUDA 'device=0,1' requested"):
        yolo_ops.train_yolo(
            tmp_path / "data.yaml",
            str(shared / "weights" / "yolo11n-coco.pt"),
            tmp_path / "m.pt",
            tmp_path / "runs" / "c1",
            epochs=1,
            imgsz=64,
            batch=4,
            device="0,1",
        )
