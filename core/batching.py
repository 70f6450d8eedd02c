"""Cross-request batching: images of concurrent requests of one worker go through ONE detect call.

Each caller hands its images to `DetectionBatcher.run` and blocks; one background thread takes
everything queued (whole requests, up to ``max_batch`` images), runs the detect function once per
distinct model and hands every caller back its own slice of the results, in order.

When to run: at once when the queue holds ``max_batch`` images, or when no other request has
announced itself (`DetectionBatcher.coming`: a request that is still reading its images), or when
the oldest queued request has waited ``max_wait_s``. A lone request (model idle, nothing queued,
nobody announced) runs in its own thread, with no hand-off at all; it therefore never waits on
purpose, and no request waits more than ``max_wait_s`` for others to join (requests that queue
while the model is busy simply ride the next pass). Results of one request never depend on the
other requests of its batch as long as the detect function gives per-image results (`Detector`
batches by image shape); when the combined call raises, each request is run again on its own, so
a bad image of one request cannot fail the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DetectFn = Callable[[Any, list[Any]], list[Any]]  # (model, images) -> one result per image


@dataclass
class _Job:
    model: Any
    images: list[Any]
    queued: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    results: list[Any] | None = None
    error: BaseException | None = None
    held_s: float = 0.0  # how long the batcher held this job on purpose, waiting for others to join
    waited_s: float = 0.0  # queued -> its pass started (includes waiting for the model to be free)
    batch_images: int = 0  # images of the pass it rode in


@dataclass
class Ticket:
    """A request announced by `DetectionBatcher.coming`; `run` with it turns the announcement into a queued job."""

    pending: bool = True


@dataclass(frozen=True)
class BatchStats:
    """What one `run` call saw (for logs, metrics and tests)."""

    held_s: float
    waited_s: float
    batch_images: int


class DetectionBatcher:
    """Gathers the images of concurrent callers into shared detect passes (thread-safe)."""

    def __init__(self, detect: DetectFn, max_batch: int = 8, max_wait_s: float = 0.005) -> None:
        self.detect = detect
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._coming = 0
        self._busy = False  # a pass is running (in the batcher thread or inline in a lone caller)
        self._thread: threading.Thread | None = None
        self.passes = 0  # detect calls made (for tests and metrics)

    @contextmanager
    def coming(self) -> Iterator[Ticket]:
        """Announce a request that will call `run` (with the yielded ticket) soon: worth waiting for.

        Wrap both the reading of the images and the `run` call; leaving without `run` withdraws it.
        """
        ticket = Ticket()
        with self._cond:
            self._coming += 1
        try:
            yield ticket
        finally:
            self._withdraw(ticket)

    def _withdraw(self, ticket: Ticket | None) -> None:
        with self._cond:
            if ticket is not None and ticket.pending:
                ticket.pending = False
                self._coming -= 1
                self._cond.notify_all()

    def run(
        self,
        model: Any,
        images: Sequence[Any],
        stats: list[BatchStats] | None = None,
        ticket: Ticket | None = None,
    ) -> list[Any]:
        """``detect(model, images)``, possibly in one pass with other callers' images.

        Raises what the detect function raised on this caller's images alone. ``stats`` (a list)
        gets one `BatchStats` appended; ``ticket`` is the one `coming` gave this request.
        """
        if not images:
            self._withdraw(ticket)
            return []
        job = _Job(model, list(images))
        with self._cond:
            if ticket is not None and ticket.pending:  # queued now: no longer "coming"
                ticket.pending = False
                self._coming -= 1
            inline = not self._busy and not self._queue and self._coming <= 0
            if inline:
                self._busy = True
            else:
                self._ensure_thread()
                self._queue.append(job)
                self._cond.notify_all()
        if inline:
            job.batch_images = len(job.images)
            try:
                self._run_group([job])
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        job.done.wait()
        if stats is not None:
            stats.append(BatchStats(job.held_s, job.waited_s, job.batch_images))
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():  # also after a fork: threads do not survive it
            self._thread = threading.Thread(target=self._loop, name="alod-batcher", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            jobs, held = self._next_batch()
            started = time.perf_counter()
            size = sum(len(j.images) for j in jobs)
            for job in jobs:
                job.held_s, job.waited_s, job.batch_images = held, started - job.queued, size
            by_model: dict[int, list[_Job]] = {}
            for job in jobs:  # a model switch can land between two requests of one batch
                by_model.setdefault(id(job.model), []).append(job)
            try:
                for group in by_model.values():
                    self._run_group(group)
            finally:
                with self._cond:
                    self._busy = False

    def _next_batch(self) -> tuple[list[_Job], float]:
        """Wait for work, then take whole jobs up to ``max_batch`` images (at least one job)."""
        with self._cond:
            while not self._queue or self._busy:
                self._cond.wait()
            seen = time.perf_counter()
            deadline = self._queue[0].queued + self.max_wait_s
            while True:
                queued = sum(len(j.images) for j in self._queue)
                now = time.perf_counter()
                if queued >= self.max_batch or self._coming <= 0 or now >= deadline:
                    break
                self._cond.wait(deadline - now)
            held = time.perf_counter() - seen
            taken, size = [], 0
            while self._queue and (not taken or size + len(self._queue[0].images) <= self.max_batch):
                job = self._queue.pop(0)
                taken.append(job)
                size += len(job.images)
            self._busy = True
            return taken, held

    def _run_group(self, jobs: list[_Job]) -> None:
        images = [im for job in jobs for im in job.images]
        try:
            self.passes += 1
            results = list(self.detect(jobs[0].model, images))
            if len(results) != len(images):
                raise RuntimeError(f"the detect function returned {len(results)} results for {len(images)} images")
        except BaseException as exc:  # noqa: BLE001 - decided per request below
            if len(jobs) == 1:
                jobs[0].error = exc
                jobs[0].done.set()
                return
            log.warning("a batch of %d requests failed (%s): running them one by one", len(jobs), exc)
            for job in jobs:
                self._run_group([job])
            return
        start = 0
        for job in jobs:
            job.results = results[start : start + len(job.images)]
            start += len(job.images)
            job.done.set()
