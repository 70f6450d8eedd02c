"""Video files and folders of frames become frame tasks with stable ids, video and frame numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from core.settings import REPO_ROOT
from pipelines.datasets import DatasetError, import_dataset

TUD = "data/mot/TUD-Campus"
FRAMES = 12


def encode(frames: list[Path], out: Path, fps: int = 25) -> Path:
    """An mp4 made from real frames (lossy, as any camera's would be)."""
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        first = Image.open(frames[0])
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv420p"
        for path in frames:
            image = av.VideoFrame.from_ndarray(np.asarray(Image.open(path).convert("RGB")), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return out


@pytest.fixture(scope="module")
def tud_video(tmp_path_factory, shared) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    frames = sorted((shared / TUD / "img1").glob("*.jpg"))[:FRAMES]
    return encode(frames, folder / "TUD-Campus.mp4")


def test_a_video_file_gives_the_same_tasks_as_its_sequence_of_frames(tud_video, shared, tmp_path):
    config = {"format": "video", "root": str(tud_video), "labels": ["pedestrian"], "frames_dir": str(tmp_path)}
    video, log = import_dataset("tud", config, REPO_ROOT)
    mot, _ = import_dataset("tud", {"format": "mot", "root": str(shared / TUD), "labels": ["pedestrian"]}, REPO_ROOT)
    columns = ["frame_id", "video", "frame", "width", "height"]
    expected = mot.frames[columns].head(FRAMES).reset_index(drop=True)
    assert video.frames[columns].equals(expected)
    assert video.frames["frame_id"].iloc[0] == "tud/TUD-Campus/000001"
    assert log.summary().endswith("no frames skipped, no warnings")


def test_every_nth_frame_keeps_frame_numbers_of_the_video(tud_video, tmp_path):
    config = {"format": "video", "root": str(tud_video), "labels": ["x"], "frames_dir": str(tmp_path), "every": 5}
    manifest, _ = import_dataset("tud", config, REPO_ROOT)
    assert manifest.frames["frame"].tolist() == [1, 6, 11]


def test_reimporting_a_video_reuses_its_frames_and_ids(tud_video, tmp_path):
    config = {"format": "video", "root": str(tud_video), "labels": ["x"], "frames_dir": str(tmp_path)}
    first, _ = import_dataset("tud", config, REPO_ROOT)
    stamp = (tmp_path / "TUD-Campus/000001.jpg").stat().st_mtime_ns
    again, _ = import_dataset("tud", config, REPO_ROOT)
    assert first.frames.equals(again.frames)
    assert (tmp_path / "TUD-Campus/000001.jpg").stat().st_mtime_ns == stamp


def test_folders_of_frames_are_videos(shared, tmp_path):
    for video in ("a", "b"):
        (tmp_path / video).mkdir()
        for n in (3, 1, 2):
            shutil.copy(shared / TUD / f"img1/{n:06d}.jpg", tmp_path / video / f"frame_{n:04d}.jpg")
    manifest, _ = import_dataset("cams", {"format": "frames", "root": str(tmp_path), "labels": ["x"]}, REPO_ROOT)
    assert manifest.frames["frame_id"].tolist() == [f"cams/{v}/{n:06d}" for v in "ab" for n in (1, 2, 3)]
    assert manifest.frames["video"].tolist() == ["a"] * 3 + ["b"] * 3


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(DatasetError, match=r"broken\.mp4: cannot open video"):
        import_dataset(
            "v", {"format": "video", "root": str(bad), "labels": ["x"], "frames_dir": str(tmp_path)}, REPO_ROOT
        )
