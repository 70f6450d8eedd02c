"""Checking image files at import time: size, and that the file decodes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

VERIFY_MODES = ("full", "header", "none")


def image_size(path: Path, verify: str = "full") -> tuple[int, int]:
    """(width, height) of an image file; DatasetError naming the file if it is missing or corrupt.

    ``verify="full"`` decodes every pixel (catches truncated JPEGs), ``"header"`` reads only
    the header (fast on huge pools), ``"none"`` trusts the caller and returns (0, 0).
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if verify == "none":
        return 0, 0
    if not path.is_file():
        raise DatasetError(path, "image not found")
    try:
        with Image.open(path) as im:
            size = im.size
            if verify == "full":
                im.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure (ultralytics patches Image.open) is a bad image
        raise DatasetError(path, f"corrupt or unreadable image ({e})") from e
    return size


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
