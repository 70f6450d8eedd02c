"""Pool images from URLs: the same pixels as the local file, and a short reason when they cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import remote_images
from core.images import ImageLoadError, load_image
from core.remote_images import load_location
from tests.backend.conftest import free_port
from tests.scale.served import serve_folder
from tests.security.conftest import Target, serve


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared: Path) -> Path:
    out = tmp_path_factory.mktemp("served")
    src = sorted((shared / "data" / "coco128" / "images" / "val2017").glob("*.jpg"))[0]
    (out / "frame.jpg").symlink_to(src)
    (out / "broken.png").write_bytes(b"not a png")
    return out


def test_an_http_image_decodes_to_the_pixels_of_the_file(folder: Path) -> None:
    with serve_folder(folder) as url:
        np.testing.assert_array_equal(load_location(f"{url}/frame.jpg"), load_image(folder / "frame.jpg"))


def test_unreadable_urls_give_short_reasons(folder: Path) -> None:
    with serve_folder(folder) as url:
        with pytest.raises(ImageLoadError, match="image not found") as missing:
            load_location(f"{url}/nope.jpg")
        assert missing.value.location == f"{url}/nope.jpg"
        with pytest.raises(ImageLoadError, match="cannot decode image"):
            load_location(f"{url}/broken.png")
    with pytest.raises(ImageLoadError, match="unsupported URL scheme 'azure-blob'"):
        load_location("azure-blob://container/frame.jpg")


def test_a_local_path_is_read_as_before(folder: Path) -> None:
    np.testing.assert_array_equal(load_location(str(folder / "frame.jpg")), load_image(folder / "frame.jpg"))


def test_an_s3_url_goes_to_pyarrows_s3_client(monkeypatch) -> None:
    """No object store here: an endpoint that refuses connections must become the frame's error, not a crash."""
    for key, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    remote_images._filesystem.cache_clear()
    with pytest.raises(ImageLoadError, match="object store read failed") as err:
        load_location("s3://pool-bucket/frames/000001.jpg")
    assert "pool-bucket" in str(err.value)
    remote_images._filesystem.cache_clear()


def test_a_url_outside_the_allow_list_is_refused_before_any_request(folder: Path) -> None:
    with serve_folder(folder) as url:
        with pytest.raises(ImageLoadError, match="download refused: host 127.0.0.1 is not allowed"):
            remote_images._read_http(f"{url}/frame.jpg", remote_images.EgressPolicy())


def test_a_redirect_to_a_host_outside_the_allow_list_is_refused(folder: Path) -> None:
    with serve_folder(folder) as url:
        bouncer = Target("127.0.0.2", free_port(), redirect_to=f"{url}/frame.jpg")
        server = serve(bouncer)
        try:
            policy = remote_images.EgressPolicy.build(None, ["127.0.0.2"])  # the bouncer only
            with pytest.raises(ImageLoadError, match="download refused"):
                remote_images._read_http(f"{bouncer.url}/frame.jpg", policy)
            assert len(bouncer.seen) == 1
        finally:
            server.shutdown()
            server.server_close()
