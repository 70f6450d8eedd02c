"""Specification of `core.images.load_image`: BGR uint8 arrays, or an error that names the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.images import ImageLoadError, load_image


def test_a_jpeg_loads_as_bgr_uint8_like_opencv(bccd_images: list[Path]) -> None:
    image = load_image(bccd_images[0])
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(bccd_images[0])))


def test_a_grayscale_image_gets_three_channels(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), np.arange(64 * 48, dtype=np.uint8).reshape(48, 64))
    assert load_image(path).shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "image not found"),
        (b"", "empty image file"),
        (b"\xff\xd8\xff\xe0 this is not a jpeg", "cannot decode image"),
    ],
)
def test_a_missing_or_corrupt_image_raises_an_error_naming_the_file(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "frame_0007.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=reason) as caught:
        load_image(path)
    assert "frame_0007.jpg" in str(caught.value) and caught.value.reason.startswith(reason)


def test_urls_are_refused_for_now() -> None:
    with pytest.raises(ImageLoadError, match="URL"):
        load_image("https://example.com/a.jpg")
