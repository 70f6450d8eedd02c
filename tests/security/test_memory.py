"""A request of many large images keeps the gunicorn worker's memory within the pixel budget's bound.

The bound (README "Security"): a request holds at most ``backend.chunk_max_pixels`` decoded pixels at
once (one larger image alone), 3 bytes each, plus up to 4 bytes a pixel while an image is being decoded
(a 4-channel decode before its alpha is dropped). So the peak RSS growth of a request of large images
stays within that of the same request with small images plus `BYTES_PER_PIXEL` x the budget.
"""

from __future__ import annotations

import http.server
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.backend.conftest import start_backend, stop
from tests.security.conftest import CONFIG

pytestmark = pytest.mark.slow

BUDGET = 30_000_000  # two of the 12-megapixel images below, not three
BYTES_PER_PIXEL = 8  # 3 held + 4 while decoding, rounded up
LARGE = (4000, 3000)  # 36 MB decoded: 16 of them are 576 MB, about 2.4 x the bound
TASKS = 16


def jpeg(width: int, height: int) -> bytes:
    import cv2

    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    image = np.stack(np.broadcast_arrays(x[None, :], y[:, None], (x[None, :] // 2 + y[:, None] // 2)), axis=2)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image))
    assert ok
    return data.tobytes()


def worker_pid(master: int) -> int:
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{master}\n" in text:
            return int(status.parent.name)
    raise AssertionError("no gunicorn worker found")


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def peak_growth_mb(pid: int, send) -> tuple[float, object]:  # noqa: ANN001
    """Peak RSS growth of the worker while ``send()`` runs (its high-water mark reset first)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = kib(pid, "VmRSS")
    answer = send()
    return (kib(pid, "VmHWM") - before) / 1024, answer


@pytest.fixture(scope="module")
def image_server():
    bodies = {"large": jpeg(*LARGE), "small": jpeg(640, 480)}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = bodies[self.path.split("/")[1]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_batch_of_large_images_stays_within_the_budgets_memory_bound(tmp_path, image_server):
    backend = start_backend(
        tmp_path,
        {
            "ALOD__BACKEND__IMAGE_HOSTS_ALLOW": '["127.0.0.1"]',  # the test's image server, as a storage host
            "ALOD__BACKEND__CHUNK_MAX_PIXELS": str(BUDGET),
        },
    )
    try:
        worker = worker_pid(backend.proc.pid)

        def predict(kind: str, n: int) -> dict:
            tasks = [{"id": i + 1, "data": {"image": f"{image_server}/{kind}/{i}.jpg"}} for i in range(n)]
            answer = requests.post(f"{backend.url}/predict", json={"tasks": tasks, "label_config": CONFIG}, timeout=600)
            assert answer.ok, answer.text[:500]
            return answer.json()

        predict("small", 2)  # the first passes allocate the model's buffers: not counted
        small_mb, _ = peak_growth_mb(worker, lambda: predict("small", TASKS))
        large_mb, answer = peak_growth_mb(worker, lambda: predict("large", TASKS))
        assert all("result" in r for r in answer["results"]), answer["results"][:2]
        bound_mb = small_mb + BYTES_PER_PIXEL * BUDGET / 2**20
        unbudgeted_mb = TASKS * LARGE[0] * LARGE[1] * 3 / 2**20
        print(f"peak RSS growth: {TASKS} small {small_mb:.0f} MB, {TASKS} large {large_mb:.0f} MB")
        print(f"bound {bound_mb:.0f} MB; all large images decoded at once would hold {unbudgeted_mb:.0f} MB")
        assert large_mb <= bound_mb, (large_mb, bound_mb)
    finally:
        stop(backend.proc, sig=signal.SIGQUIT)
