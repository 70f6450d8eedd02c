"""Loading the images of the pool and of Label Studio tasks.

Decoding goes through ultralytics' own ``imread`` so that a frame scored here and the
same file given to ``YOLO.predict`` are the same pixels (EXIF rotation, 16-bit and TIFF
handling included).
"""

from __future__ import annotations

import os
import threading
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


class PixelBudget:
    """Decoded pixels one request may hold at once, shared by the threads that read its images.

    A reader calls `take` with an image's pixel count (from its header) before decoding it; it
    blocks while the pixels do not fit beside those held. An image larger than the whole budget
    waits until nothing is held and then is held alone. The request hands the decoded images to
    the detector and calls `give_back` once they are no longer needed; `stalled` tells it when to
    do so early: a reader waits and every held pixel belongs to images already handed over.
    """

    def __init__(self, pixels: int) -> None:
        self.total = max(1, int(pixels))
        self.held = 0
        self.waiting = 0
        self.cond = threading.Condition()

    def take(self, pixels: int) -> None:
        with self.cond:
            self.waiting += 1
            self.cond.notify_all()  # the request's thread may now have to give back what it holds
            try:
                while self.held > 0 and self.held + pixels > self.total:
                    self.cond.wait()
            finally:
                self.waiting -= 1
            self.held += pixels

    def give_back(self, pixels: int) -> None:
        with self.cond:
            self.held = max(0, self.held - pixels)
            self.cond.notify_all()

    def correct(self, charged: int, actual: int) -> None:
        """The decoded image has ``actual`` pixels where its header said ``charged``."""
        with self.cond:
            self.held += actual - charged
            self.cond.notify_all()

    def open(self) -> None:
        """No limit from now on: waiting readers go ahead (when the request gives up)."""
        with self.cond:
            self.total = 1 << 62
            self.cond.notify_all()

    def stalled(self, handed_over: int) -> bool:
        """A reader waits and all held pixels are in the ``handed_over`` ones (call with ``cond`` held)."""
        return self.waiting > 0 and 0 < handed_over and self.held <= handed_over


def pixels_of(image: np.ndarray) -> int:
    return int(image.shape[0]) * int(image.shape[1])


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
