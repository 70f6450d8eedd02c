"""Tasks in, Label Studio predictions out: fetch images, ONE detector pass, score, convert.

The same code serves ``/predict`` (batches and interactive single tasks) and ``alod
push-predictions``. A batch is processed in chunks of ``chunk_tasks`` so a large one never holds
all its images in memory. A task whose image cannot be read (or that has no image field) gets
``{"error": reason, "task": id}`` instead of a prediction -- Label Studio skips entries without a
``result`` and stores the rest of the batch -- and the reason is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core.backend_settings import BackendSettings
from core.batching import BatchStats, DetectionBatcher, Ticket
from core.fetch import ImageFetcher
from core.images import ImageLoadError, PixelBudget, pixels_of
from core.labels import ClassLabels, build_label_map
from core.model_store import ModelStore
from core.predictions import task_prediction
from core.scoring import (
    DetectionOptions,
    TaskScorer,
    detect_each,
    detection_options,
    pool_from_detections,
    to_ls_score,
)

DETECTION_FAILED = "detection failed"  # what a task whose image the detector failed on answers

log = logging.getLogger(__name__)


class Metrics(Protocol):
    """Where the predictor counts its work (the backend passes its Prometheus metrics)."""

    def inc(self, name: str, labels: dict[str, object] | None = None, value: float = 1.0) -> None: ...


@dataclass
class PredictResult:
    results: list[dict[str, Any]]  # one per task, in order: a prediction or {"error": ..., "task": ...}
    model_version: str
    errors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per stage: fetch, wait (batcher queue), detect, convert
    batches: list[BatchStats] = field(default_factory=list)  # one per chunk that went through the batcher


GPU_WAIT_MS = 2.0


def auto_wait_ms(detector: Any) -> float:
    """``backend.batch_wait_ms: null``: 0 on the CPU, ``GPU_WAIT_MS`` on an accelerator.

    A CPU pass costs about in proportion to its images, so holding a ready request for others only
    adds latency (benchmarks/serve_load.py: p50 at 4 and 16 clients no better with 5 ms than with 0);
    requests that arrive while a pass runs still share the next one. A GPU pass of 8 images costs
    about what one image costs, so a short hold fills batches.
    """
    device = getattr(detector, "device", None)
    return 0.0 if getattr(device, "type", "cpu") == "cpu" else GPU_WAIT_MS


class Predictor:
    def __init__(
        self,
        store: ModelStore,
        fetcher: ImageFetcher,
        scorer: TaskScorer,
        options: DetectionOptions,
        *,
        conf_predict: float = 0.25,
        chunk_tasks: int = 32,
        fetch_workers: int = 8,
        chunk_max_pixels: int | None = None,
        batching: bool = False,
        batch_size: int | None = None,
        batch_wait_ms: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``batching``: concurrent calls share detect passes (core/batching.py). ``batch_size`` None is
        the detector's own batch; ``batch_wait_ms`` None is `auto_wait_ms` of the detector's device.
        ``fetch_workers``: threads reading the images of one call; ``chunk_max_pixels``: decoded pixels
        one call holds at once (None: no budget)."""
        self.store, self.fetcher, self.scorer, self.metrics = store, fetcher, scorer, metrics
        self.conf_predict = float(conf_predict)
        # boxes under the pre-annotation threshold still count for the score
        self.options = dataclasses.replace(options, conf=min(options.conf, self.conf_predict))
        self.chunk_tasks = max(1, int(chunk_tasks))
        self.fetch_workers = max(1, int(fetch_workers))  # per request (each its own threads)
        self.chunk_max_pixels = int(chunk_max_pixels) if chunk_max_pixels else None  # decoded pixels held at once
        self.batcher: DetectionBatcher | None = None
        if batching:
            self.batcher = DetectionBatcher(self._detect, batch_size or 1, (batch_wait_ms or 0) / 1000)
        self._batch_size_from_detector = batch_size is None
        self._wait_from_detector = batch_wait_ms is None

    @classmethod
    def from_settings(
        cls,
        settings: BackendSettings,
        *,
        model_uri: str | None = None,
        label_studio_url: str | None = None,
        api_key: str | None = None,
        metrics: Metrics | None = None,
    ) -> Predictor:
        """The predictor the backend and `alod push-predictions` both use, built from the settings."""

        def load(weights: Any) -> Any:
            from core.detector import Detector  # torch and ultralytics are imported with the first model

            if settings.torch_threads:
                import torch

                torch.set_num_threads(settings.torch_threads)
            return Detector.from_params(settings.params, weights)

        store = ModelStore(
            model_uri or settings.model_uri,
            load,
            settings.model_cache_dir,
            settings.mlflow_tracking_uri,
            settings.model_poll_s,
            fallback=settings.fallback_weights if (model_uri or settings.model_uri).startswith("models:/") else None,
        )
        fetcher = ImageFetcher(
            label_studio_url or settings.label_studio_url,
            api_key or settings.label_studio_api_key,
            settings.local_files_document_root,
            settings.image_timeout_s,
            settings.image_max_bytes,
            settings.image_max_pixels,
            settings.image_hosts_allow,
        )
        scorer = TaskScorer(settings.strategy, settings.strategy_params, settings.seed)
        return cls(
            store,
            fetcher,
            scorer,
            detection_options(settings.params, scorer.name),
            conf_predict=settings.conf_predict,
            chunk_tasks=settings.chunk_tasks,
            fetch_workers=settings.fetch_workers,
            chunk_max_pixels=settings.chunk_max_pixels,
            batching=settings.batching,
            batch_size=settings.batch_size,
            batch_wait_ms=settings.batch_wait_ms,
            metrics=metrics,
        )

    def label_map(self, label_config: str) -> ClassLabels:
        detector, _ = self.store.model()
        return build_label_map(label_config, detector.names)

    def predict(self, tasks: Sequence[Any], label_config: str, fetcher: ImageFetcher | None = None) -> PredictResult:
        """Predictions for ``tasks`` (Label Studio task dicts with ``id`` and ``data``)."""
        detector, ref = self.store.model()  # one model for the whole batch, even if a switch lands meanwhile
        label_map = build_label_map(label_config, detector.names)
        fetcher = fetcher or self.fetcher
        out = PredictResult([], ref.version)
        totals = {"fetch": 0.0, "wait": 0.0, "detect": 0.0, "convert": 0.0}
        for start in range(0, len(tasks), self.chunk_tasks):
            chunk = tasks[start : start + self.chunk_tasks]
            out.results.extend(self._chunk(chunk, detector, ref.version, label_map, fetcher, totals, out.batches))
        out.errors = sum("error" in r for r in out.results)
        out.seconds = totals
        if self.metrics is not None:
            for stage, seconds in totals.items():
                self.metrics.inc("alod_predict_stage_seconds_total", {"stage": stage}, seconds)
            self.metrics.inc("alod_predicted_tasks_total", {"outcome": "ok"}, len(out.results) - out.errors)
            self.metrics.inc("alod_predicted_tasks_total", {"outcome": "error"}, out.errors)
        return out

    def _chunk(
        self,
        tasks: Sequence[Any],
        detector: Any,
        version: str,
        label_map: ClassLabels,
        fetcher: ImageFetcher,
        totals: dict[str, float],
        batches: list[BatchStats],
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(tasks)
        jobs: list[tuple[int, Any, Any]] = []
        for i, task in enumerate(tasks):
            task_id = task.get("id") if isinstance(task, dict) else None
            data = task.get("data") if isinstance(task, dict) else None
            if not isinstance(data, dict):
                results[i] = self._error(task_id, "the task has no data object", version)
            elif label_map.data_key not in data:
                results[i] = self._error(task_id, f"the task data has no {label_map.data_key!r} field", version)
            else:
                jobs.append((i, task_id, data[label_map.data_key]))

        detected: list[tuple[tuple[int, Any, Any], Any]] = []  # (job, detections or an error string)
        spent = {"wait": 0.0, "detect": 0.0}

        def detect(group: list[tuple[tuple[int, Any, Any], np.ndarray | str]]) -> None:
            for job, item in group:
                if not isinstance(item, np.ndarray):
                    results[job[0]] = self._error(job[1], item, version)
            ok = [(job, item) for job, item in group if isinstance(item, np.ndarray)]
            if not ok:
                return
            started = time.perf_counter()
            dets, waited = self._detect_shared(detector, [image for _, image in ok], batches, ticket)
            spent["wait"] += waited
            spent["detect"] += time.perf_counter() - started - waited
            detected.extend((job, det) for (job, _), det in zip(ok, dets, strict=True))

        announce = self.batcher.coming() if self.batcher is not None and jobs else contextlib.nullcontext()
        with announce as ticket:  # concurrent requests' passes wait (briefly) for this one while it reads
            started = time.perf_counter()
            self._read(fetcher, jobs, detect)
            totals["fetch"] += time.perf_counter() - started - spent["wait"] - spent["detect"]
            totals["wait"] += spent["wait"]
            totals["detect"] += spent["detect"]

        started = time.perf_counter()
        good = [(job, det) for job, det in detected if not isinstance(det, str)]
        for job, det in detected:
            if isinstance(det, str):
                results[job[0]] = self._error(job[1], det, version)
        if good:
            ids = [str(job[1]) for job, _ in good]
            # scored over the classes the project labels, or every model class while none maps (a new domain)
            keep = list(label_map.class_to_label) or None
            pool = pool_from_detections(ids, [d for _, d in good], detector.names, keep)
            values = self.scorer.values(pool, ids)
            for (job, det), value in zip(good, values, strict=True):
                results[job[0]] = task_prediction(det, label_map, self.conf_predict, to_ls_score(value), version)
        totals["convert"] += time.perf_counter() - started
        return results  # type: ignore[return-value]

    def _read(
        self,
        fetcher: ImageFetcher,
        jobs: list[tuple[int, Any, Any]],
        on_group: Callable[[list[tuple[tuple[int, Any, Any], np.ndarray | str]]], None],
    ) -> None:
        """Reads the images of ``jobs`` and hands them (or their error strings) to ``on_group``.

        Each call reads with its own threads (at most ``fetch_workers``): slow images of one request
        never hold a thread another request is waiting for. With ``chunk_max_pixels``, the decoded
        images held at once stay within that many pixels (one larger image is held alone): when a
        reader waits for room, the images read so far go to ``on_group`` and are released after it
        returns, and reading goes on for the next group.
        """
        budget = PixelBudget(self.chunk_max_pixels) if self.chunk_max_pixels else None
        if len(jobs) == 1:  # interactive pre-annotation: no hand-off to a thread
            on_group([(jobs[0], self._load(fetcher, jobs[0][2], jobs[0][1], budget))])
            return
        group: list[tuple[tuple[int, Any, Any], np.ndarray | str]] = []
        held = 0  # pixels of the images in ``group``
        with ThreadPoolExecutor(min(self.fetch_workers, len(jobs)), thread_name_prefix="alod-fetch") as pool:
            pending = {pool.submit(self._load, fetcher, job[2], job[1], budget): job for job in jobs}
            if budget is None:
                on_group([(job, future.result()) for future, job in pending.items()])
                return
            for future in pending:
                future.add_done_callback(lambda _: _notify(budget.cond))
            try:
                while pending:
                    with budget.cond:
                        budget.cond.wait_for(lambda held=held: any(f.done() for f in pending) or budget.stalled(held))
                    for done in [f for f in pending if f.done()]:
                        group.append((pending.pop(done), done.result()))
                        held += pixels_of(group[-1][1]) if isinstance(group[-1][1], np.ndarray) else 0
                    done = None  # type: ignore[assignment]  # a finished future holds its image: let it go with the group
                    with budget.cond:
                        stalled = budget.stalled(held)
                    if (stalled or not pending) and group:
                        on_group(group)
                        group.clear()  # the images are freed here, not when the next group replaces them
                        budget.give_back(held)
                        held = 0
            finally:
                budget.open()  # readers still waiting (after an error above) must not block the pool's shutdown

    @staticmethod
    def _load(fetcher: ImageFetcher, ref: Any, task_id: Any, budget: PixelBudget | None = None) -> np.ndarray | str:
        try:
            task = task_id if isinstance(task_id, int) else None
            return fetcher.load(ref, task) if budget is None else fetcher.load(ref, task, budget)
        except ImageLoadError as exc:
            return f"cannot read the image: {exc.reason}: {exc.location}"
        except Exception as exc:  # noqa: BLE001 - one bad task must not fail the batch
            log.exception("task %s: unexpected error while reading its image", task_id)
            return f"cannot read the image: {type(exc).__name__}: {exc}"

    def _detect_shared(
        self, detector: Any, images: list[np.ndarray], batches: list[BatchStats], ticket: Ticket | None
    ) -> tuple[list[Any], float]:
        """`_detect`, through the cross-request batcher when there is one, and the seconds spent in its queue."""
        if self.batcher is None or not images:
            return self._detect(detector, images), 0.0
        if self._batch_size_from_detector:
            self.batcher.max_batch = max(1, int(getattr(detector, "batch", 1)))
        if self._wait_from_detector:
            self.batcher.max_wait_s = auto_wait_ms(detector) / 1000
        dets = self.batcher.run(detector, images, batches, ticket)
        return dets, batches[-1].waited_s

    def _detect(self, detector: Any, images: list[np.ndarray]) -> list[Any]:
        """Detections per image (`core.scoring.detect_each`); an image the detector fails on gets the
        public error string instead (the exception is logged, not sent)."""
        detections = detect_each(detector, images, self.options)
        return [DETECTION_FAILED if isinstance(d, Exception) else d for d in detections]

    @staticmethod
    def _error(task_id: Any, reason: str, version: str) -> dict[str, Any]:
        log.warning("task %s: no prediction: %s", task_id, reason)
        return {"task": task_id, "error": reason, "model_version": version}


def _notify(cond: threading.Condition) -> None:
    with cond:
        cond.notify_all()
