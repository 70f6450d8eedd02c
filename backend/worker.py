"""A gunicorn worker that gives a thread a connection only once its request has arrived.

gunicorn's ``gthread`` worker hands a new connection to a thread as soon as any byte arrives; a
client that sends half its headers and then waits holds that thread, and a handful of such
clients stop the worker from answering at all. Here the worker's own event loop reads the request
first, without a thread: the headers (within `HEADER_TIMEOUT_S`) and a body of up to
`BUFFER_BODY_BYTES` with a ``Content-Length`` (within `REQUEST_TIMEOUT_S` in all). Only then does
a thread parse and serve it, from memory. A slow or silent client costs a file descriptor and a
small buffer, never a thread; one that misses its deadline is closed. Larger bodies (or chunked
ones) are handed over once their headers are in. TLS belongs in front of the backend (README
"Security"), so connections here are plain HTTP.

    gunicorn -k backend.worker.BufferingThreadWorker ...   (backend/gunicorn_conf.py sets it)
"""

from __future__ import annotations

import re
import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

HEADER_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
MAX_HEADER_BYTES = 64 << 10
BUFFER_BODY_BYTES = 8 << 20
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)\s*\r\n", re.IGNORECASE)


def request_complete(buffer: bytes | bytearray) -> bool | None:
    """True: headers and the announced body are in; False: keep reading; None: too large to buffer."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None if len(buffer) > MAX_HEADER_BYTES else False
    match = _CONTENT_LENGTH.search(bytes(buffer[: end + 2]))
    length = int(match.group(1)) if match else 0
    if length > BUFFER_BODY_BYTES:
        return True  # hand over after the headers: the thread reads the rest
    return len(buffer) - (end + 4) >= length


class BufferingThreadWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arriving: deque[Any] = deque()  # connections whose request is still arriving, oldest first

    def enqueue_req(self, conn: Any) -> None:
        if getattr(conn, "alod_buffer", None) is not None or self.cfg.is_ssl:
            super().enqueue_req(conn)  # the request is in memory (or TLS: read by the thread)
            return
        conn.sock.setblocking(False)
        conn.alod_pending = bytearray()
        now = time.monotonic()
        conn.alod_header_deadline, conn.alod_deadline = now + HEADER_TIMEOUT_S, now + REQUEST_TIMEOUT_S
        self.arriving.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))

    def _on_bytes(self, conn: Any, client: Any) -> None:
        try:
            data = conn.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        conn.alod_pending += data
        state = request_complete(conn.alod_pending)
        if state is False:
            return
        self._stop_watching(conn)
        conn.alod_buffer, conn.alod_pending = bytes(conn.alod_pending), None
        conn.data_ready = True
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        buffered = getattr(conn, "alod_buffer", None)
        if buffered is not None:
            conn.alod_buffer = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(buffered)
        return super().handle(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self.arriving):
            headers_in = conn.alod_pending is not None and b"\r\n\r\n" in conn.alod_pending
            if now > conn.alod_deadline or (not headers_in and now > conn.alod_header_deadline):
                self._drop(conn)

    def _stop_watching(self, conn: Any) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.arriving.remove(conn)
        except ValueError:
            pass

    def _drop(self, conn: Any) -> None:
        self._stop_watching(conn)
        self.nr_conns -= 1
        conn.close()
