"""Video as frames: video files (decoded with PyAV) and folders of frames, one folder per video.

Both give the same tasks for the same footage: frame ids ``<dataset>/<video>/<frame:06d>`` with
1-based frame numbers (as MOTChallenge's ``img1/000001.jpg``), ``video`` and ``frame`` set, so
Label Studio can filter and sort by them. Decoded frames are written once as JPEG files under
``frames_dir``; a rerun reuses them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import DatasetError
from ..formats import Source, register_format
from ..images import list_images
from ..manifest import ManifestBuilder

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def read_video_files(
    root: Path, builder: ManifestBuilder, dataset: str, frames_dir: Path, every: int = 1, split: str = "train"
) -> None:
    """``root``: a video file or a folder of them. Keeps frames 1, 1 + every, 1 + 2 * every, ..."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    videos = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise DatasetError(root, f"no video files ({', '.join(VIDEO_SUFFIXES)})")
    for video in videos:
        meta = {"source_video": video.name}
        for frame, image in extract_frames(video, frames_dir / video.stem, every, builder):
            builder.add_frame(
                f"{dataset}/{video.stem}/{frame:06d}", image, [], split=split, video=video.stem, frame=frame, meta=meta
            )


def read_frame_folders(root: Path, builder: ManifestBuilder, dataset: str, split: str = "train") -> None:
    """``root/<video>/<...number...>.jpg``: the number in each file name is its frame number."""
    folders = sorted(d for d in root.iterdir() if d.is_dir())
    if not folders:
        raise DatasetError(root, "no video folders (expected one folder of frames per video)")
    for folder in folders:
        for image in list_images(folder):
            digits = re.findall(r"\d+", image.stem)
            if not digits:
                builder.log.warn(f"{image}: no frame number in the file name, ignored", "unnumbered frame")
                continue
            frame = int(digits[-1])
            builder.add_frame(
                f"{dataset}/{folder.name}/{frame:06d}", image, [], split=split, video=folder.name, frame=frame
            )


def extract_frames(video: Path, out: Path, every: int, builder: ManifestBuilder) -> Iterator[tuple[int, Path]]:
    """Decode every n-th frame to ``out/<frame:06d>.jpg`` (atomic writes; existing files are reused).

    A decoding error mid-stream keeps the frames decoded so far and records a warning."""
    import av

    out.mkdir(parents=True, exist_ok=True)
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as e:
        raise DatasetError(video, f"cannot open video ({e})") from e
    with container:
        if not container.streams.video:
            raise DatasetError(video, "no video stream")
        stream = container.streams.video[0]
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every:
                    continue
                number = index + 1
                path = out / f"{number:06d}.jpg"
                if not path.exists():
                    tmp = path.with_name(f".{path.name}.tmp.jpg")
                    frame.to_image().save(tmp, quality=95)
                    os.replace(tmp, path)
                yield number, path
        except av.error.FFmpegError as e:
            builder.log.warn(f"{video}: decoding stopped after frame {index} ({e})", "truncated video")


@register_format("video")
def read_video_source(source: Source) -> None:
    frames_dir = source.optional_path("frames_dir") or source.base / "data" / "frames" / source.name
    every = int(source.config.get("every", 1))
    read_video_files(source.path("root"), source.builder, source.name, frames_dir, every, source.split)


@register_format("frames")
def read_frames_source(source: Source) -> None:
    read_frame_folders(source.path("root"), source.builder, source.name, source.split)
