"""A folder served over HTTP on 127.0.0.1: the stand-in for an object store's public or presigned URLs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

ALLOW = "ALOD__BACKEND__IMAGE_HOSTS_ALLOW"
LOOPBACK = '["127.0.0.1"]'


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` while the block runs; yields the base URL.

    Images are fetched only from allow-listed hosts and this server is on loopback: it is listed
    (``backend.image_hosts_allow``) for as long as the block runs (Ray workers get it from `ray_local`).
    """
    from core.remote_images import pipeline_policy

    saved = os.environ.get(ALLOW)
    os.environ[ALLOW] = LOOPBACK
    pipeline_policy.cache_clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        if saved is None:
            os.environ.pop(ALLOW, None)
        else:
            os.environ[ALLOW] = saved
        pipeline_policy.cache_clear()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass
