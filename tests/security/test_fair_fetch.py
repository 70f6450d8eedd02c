"""Fair sharing of image reads: a request whose image URLs are slow never holds up another request."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

from core.fetch import ImageFetcher
from tests.security.conftest import CONFIG, predictor

SLOW_S = 8.0  # each slow image answers after this long (within the 10 s image deadline)


def image_server(jpeg: bytes) -> tuple[http.server.ThreadingHTTPServer, list[str]]:
    """``/slow/...`` answers after `SLOW_S`, anything else at once; the paths seen, in arrival order."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(self.path)
            if self.path.startswith("/slow/"):
                time.sleep(SLOW_S)
            self.send_response(200)
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_a_request_with_slow_images_does_not_starve_an_unrelated_one(detector, shared: Path, tmp_path: Path):
    jpeg = (shared / "data/coco128/images/train2017/000000000036.jpg").read_bytes()
    server, seen = image_server(jpeg)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fetcher = ImageFetcher(allowed_hosts=("127.0.0.1",))
    p = predictor(detector, tmp_path, 100_000_000, fetch_workers=4, fetcher=fetcher)
    p.predict([{"id": 0, "data": {"image": f"{base}/warm.jpg"}}], CONFIG)  # the model's first pass, not timed
    try:
        slow = [{"id": i, "data": {"image": f"{base}/slow/{i}.jpg"}} for i in range(1, 9)]  # twice fetch_workers
        slow_out: list = []
        hog = threading.Thread(target=lambda: slow_out.append(p.predict(slow, CONFIG)))
        hog.start()
        deadline = time.monotonic() + 10
        while sum(path.startswith("/slow/") for path in seen) < 4:  # every thread it may use is waiting
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        fast = [{"id": 100 + i, "data": {"image": f"{base}/fast/{i}.jpg"}} for i in range(2)]
        out = p.predict(fast, CONFIG)
        took = time.monotonic() - started
        assert out.errors == 0 and all(r["result"] for r in out.results)
        assert took < SLOW_S / 2, took  # a shared pool would first finish the slow request's reads (2 x SLOW_S)
        assert hog.is_alive()  # the slow request was still in flight all along
        hog.join(4 * SLOW_S)
        assert slow_out and slow_out[0].errors == 0
    finally:
        server.shutdown()
        server.server_close()
