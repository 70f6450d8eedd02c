"""Targets for the security tests: small HTTP servers on loopback addresses, each counting its visitors."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.fetch import ImageFetcher
from core.model_store import ModelStore
from core.predictor import Predictor
from core.scoring import DetectionOptions, TaskScorer
from tests.backend.conftest import free_port

CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="person"/></RectangleLabels></View>'
)


@pytest.fixture(scope="module")
def detector(params: dict, shared: Path) -> Any:
    """The real COCO detector at imgsz 160 on the CPU (for in-process predictors)."""
    from core.detector import Detector

    return Detector.from_params(params, shared / "weights" / "yolo11n-coco.pt", imgsz=160, device="cpu")


def predictor(
    detector: Any, tmp_path: Path, budget: int | None, fetch_workers: int = 8, fetcher: ImageFetcher | None = None
) -> Predictor:
    """A predictor around an already loaded ``detector`` (no batcher), with this pixel budget."""
    store = ModelStore(str(tmp_path / "model.pt"), lambda _: detector, tmp_path)
    store._current = (detector, type("Ref", (), {"version": "test@1"})())  # loaded: no weights file needed
    options = DetectionOptions(conf=0.05, tta_flip=False, divergence_radius=None)
    return Predictor(
        store,
        fetcher or ImageFetcher(),
        TaskScorer("uncertainty"),
        options,
        fetch_workers=fetch_workers,
        chunk_max_pixels=budget,
    )


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
