"""Image access: every kind of reference a task can hold, read for real (file server, disk, data: URLs)."""

from __future__ import annotations

import http.server
import threading
import time

import numpy as np
import pytest

from core.fetch import ImageFetcher
from core.images import ImageLoadError, load_image

IMAGE = "000000000094.jpg"


@pytest.fixture(scope="module")
def expected(coco_dir) -> np.ndarray:
    return load_image(coco_dir / IMAGE)


LOOPBACK = ("127.0.0.1",)  # the tests' own servers: allowed explicitly, as a deployment would


def test_data_url_decodes_to_the_same_pixels_as_the_file(coco_dir, expected, to_data_url):
    assert np.array_equal(ImageFetcher().load(to_data_url(coco_dir / IMAGE)), expected)


def test_http_url_keeps_its_query_string_and_reads_the_same_pixels(file_server, expected):
    url = f"{file_server.url}/{IMAGE}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef"
    assert np.array_equal(ImageFetcher(allowed_hosts=LOOPBACK).load(url), expected)


def test_local_files_url_is_read_from_the_document_root(shared, expected):
    fetcher = ImageFetcher(document_root=shared / "data")
    image = fetcher.load(f"/data/local-files/?d=coco128/images/train2017/{IMAGE}")
    assert np.array_equal(image, expected)


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("/data/local-files/?d=../../etc/passwd", "Local Storage file is not available"),  # outside the root
        ("/data/upload/3/a.jpg", "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"),
        ("s3://bucket/a.jpg", "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"),
        ("relative/path.jpg", "unsupported image reference"),
        ("file:///etc/passwd", "unsupported image reference"),
        ("", "empty or not a string"),
        (None, "empty or not a string"),
        ("data:image/png;base64", "no comma"),
    ],
)
def test_references_that_cannot_be_read_here_say_why(shared, ref, reason):
    with pytest.raises(ImageLoadError, match=reason):
        ImageFetcher(document_root=shared / "data").load(ref)


def test_cloud_uris_need_the_task_id_for_label_studio_to_presign():
    with pytest.raises(ImageLoadError, match="needs the task id"):
        ImageFetcher("http://127.0.0.1:1", "token").load("gs://bucket/a.jpg")


@pytest.mark.parametrize(
    ("name", "limits", "reason"),
    [
        ("big.jpg", {"max_bytes": 1 << 20}, "image too large: 3145728 bytes"),
        ("bomb.png", {"max_pixels": 10_000_000}, "6000x6000 pixels > limit 10000000"),
        ("notes.jpg", {}, "not an image format the backend reads"),
        ("nothing-here.jpg", {}, "cannot read the image at this URL"),
    ],
)
def test_downloads_are_limited_and_checked_before_decoding(file_server, name, limits, reason):
    with pytest.raises(ImageLoadError, match=reason):
        ImageFetcher(allowed_hosts=LOOPBACK, **limits).load(f"{file_server.url}/{name}")


def test_a_data_url_over_the_byte_limit_is_refused_before_decoding():
    with pytest.raises(ImageLoadError, match="too large"):
        ImageFetcher(max_bytes=1000).load("data:image/png;base64," + "A" * 4000)


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        for _ in range(50):  # drips for 5 s: every read is fast, the whole body is not
            self.wfile.write(b"\xff" * 10)
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_a_slow_server_cannot_hold_a_worker_past_the_timeout():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(ImageLoadError, match="cannot read the image at this URL"):
            ImageFetcher(timeout=1.0, allowed_hosts=LOOPBACK).load(
                f"http://127.0.0.1:{server.server_address[1]}/slow.jpg"
            )
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


class _FakeLabelStudio(http.server.BaseHTTPRequestHandler):
    """Answers any path with the image and remembers the Authorization header it got."""

    image = b""
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.image)))
        self.end_headers()
        self.wfile.write(self.image)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_the_label_studio_token_is_sent_to_label_studio_only(coco_dir, expected):
    _FakeLabelStudio.image = (coco_dir / IMAGE).read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeLabelStudio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ls_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        image = ImageFetcher(ls_url, "secret-token").load("/tasks/5/presign/?fileuri=czM6Ly9iL2EuanBn")
        assert np.array_equal(image, expected)
        other = ImageFetcher("http://127.0.0.1:1", "secret-token", allowed_hosts=("localhost",))
        other.load(f"{ls_url.replace('127.0.0.1', 'localhost')}/a.jpg")
    finally:
        server.shutdown()
        server.server_close()
    assert _FakeLabelStudio.seen == ["Token secret-token", None]
