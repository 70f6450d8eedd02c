"""Targets for the security tests: small HTTP servers on loopback addresses, each counting its visitors."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.backend.conftest import free_port


@dataclass
class Target:
    """An HTTP server standing for an internal service (or an attacker's host): it records every request."""

    host: str
    port: int
    body: bytes = b"secret internal data"
    redirect_to: str | None = None
    seen: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def serve(target: Target) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            target.seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            if target.redirect_to:
                self.send_response(302)
                self.send_header("Location", target.redirect_to)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(target.body)))
            self.end_headers()
            self.wfile.write(target.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer((target.host, target.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def targets() -> Iterator:
    """``make(host, **kwargs) -> Target``: a running target on ``host`` (a loopback address)."""
    servers = []

    def make(host: str = "127.0.0.1", **kwargs) -> Target:
        target = Target(host, free_port(), **kwargs)
        servers.append(serve(target))
        return target

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()
