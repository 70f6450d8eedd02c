"""Loading the images of the pool and of Label Studio tasks.

Decoding goes through ultralytics' own ``imread`` so that a frame scored here and the
same file given to ``YOLO.predict`` are the same pixels (EXIF rotation, 16-bit and TIFF
handling included).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.settings import configure_environment

_URL_SCHEMES = ("http://", "https://", "s3://", "gs://", "azure-blob://")


class ImageLoadError(OSError):
    """An image that cannot be used; ``reason`` is short enough for an error row."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{reason}: {location}")
        self.location = location
        self.reason = reason


def is_url(location: str) -> bool:
    return location.lower().startswith(_URL_SCHEMES)


def load_image(location: str | os.PathLike[str]) -> np.ndarray:
    """The image at ``location`` as an (H, W, 3) uint8 BGR array.

    Raises ImageLoadError naming the file when it is missing, empty or cannot be decoded.
    """
    location = str(location)
    if is_url(location):
        raise ImageLoadError(location, "URLs are not supported yet")
    path = Path(location)
    if not path.exists():
        raise ImageLoadError(location, "image not found")
    if not path.is_file():
        raise ImageLoadError(location, "not a file")
    if path.stat().st_size == 0:
        raise ImageLoadError(location, "empty image file")

    configure_environment()
    from ultralytics.utils.patches import imread

    image = imread(location)
    if image is None or image.size == 0:
        raise ImageLoadError(location, "cannot decode image (corrupt or unsupported format)")
    if image.ndim == 2 or image.shape[2] == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    elif image.shape[2] == 4:
        image = np.ascontiguousarray(image[..., :3])
    return image
