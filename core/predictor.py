"""Tasks in, Label Studio predictions out: fetch images, ONE detector pass, score, convert.

The same code serves ``/predict`` (batches and interactive single tasks) and ``alod
push-predictions``. A batch is processed in chunks of ``chunk_tasks`` so a large one never holds
all its images in memory. A task whose image cannot be read (or that has no image field) gets
``{"error": reason, "task": id}`` instead of a prediction -- Label Studio skips entries without a
``result`` and stores the rest of the batch -- and the reason is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core.backend_settings import BackendSettings
from core.divergence import divergence_setting
from core.fetch import ImageFetcher
from core.images import ImageLoadError
from core.labels import LabelMap, build_label_map
from core.model_store import ModelStore
from core.predictions import task_prediction
from core.scoring import TaskScorer, pool_from_detections, to_ls_score

log = logging.getLogger(__name__)


class Metrics(Protocol):
    """Where the predictor counts its work (the backend passes its Prometheus metrics)."""

    def inc(self, name: str, labels: dict[str, object] | None = None, value: float = 1.0) -> None: ...


@dataclass
class PredictResult:
    results: list[dict[str, Any]]  # one per task, in order: a prediction or {"error": ..., "task": ...}
    model_version: str
    errors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class Predictor:
    def __init__(
        self,
        store: ModelStore,
        fetcher: ImageFetcher,
        scorer: TaskScorer,
        *,
        conf_predict: float = 0.25,
        conf_score: float = 0.05,
        chunk_tasks: int = 32,
        fetch_workers: int = 8,
        metrics: Metrics | None = None,
    ) -> None:
        self.store, self.fetcher, self.scorer, self.metrics = store, fetcher, scorer, metrics
        self.conf_predict = float(conf_predict)
        self.conf_detect = min(float(conf_score), self.conf_predict)
        self.chunk_tasks = max(1, int(chunk_tasks))
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(fetch_workers)), thread_name_prefix="alod-fetch")

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
        )
        fetcher = ImageFetcher(
            label_studio_url or settings.label_studio_url,
            api_key or settings.label_studio_api_key,
            settings.local_files_document_root,
            settings.image_timeout_s,
            settings.image_max_bytes,
            settings.image_max_pixels,
        )
        return cls(
            store,
            fetcher,
            TaskScorer(settings.strategy, settings.strategy_params, settings.seed,
                       divergence_setting((settings.params or {}).get("detector"))),
            conf_predict=settings.conf_predict,
            conf_score=settings.conf_score,
            chunk_tasks=settings.chunk_tasks,
            fetch_workers=settings.fetch_workers,
            metrics=metrics,
        )

    def label_map(self, label_config: str) -> LabelMap:
        detector, _ = self.store.model()
        return build_label_map(label_config, detector.names)

    def predict(
        self, tasks: Sequence[Any], label_config: str, fetcher: ImageFetcher | None = None
    ) -> PredictResult:
        """Predictions for ``tasks`` (Label Studio task dicts with ``id`` and ``data``)."""
        detector, ref = self.store.model()  # one model for the whole batch, even if a switch lands meanwhile
        label_map = build_label_map(label_config, detector.names)
        fetcher = fetcher or self.fetcher
        out = PredictResult([], ref.version)
        totals = {"fetch": 0.0, "detect": 0.0, "convert": 0.0}
        for start in range(0, len(tasks), self.chunk_tasks):
            chunk = tasks[start : start + self.chunk_tasks]
            out.results.extend(self._chunk(chunk, detector, ref.version, label_map, fetcher, totals))
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
        label_map: LabelMap,
        fetcher: ImageFetcher,
        totals: dict[str, float],
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

        started = time.perf_counter()
        if len(jobs) == 1:  # interactive pre-annotation: no hand-off to the pool
            loaded = [self._load(fetcher, jobs[0][2], jobs[0][1])]
        else:
            loaded = list(self._pool.map(lambda job: self._load(fetcher, job[2], job[1]), jobs))
        totals["fetch"] += time.perf_counter() - started

        ok = [(job, image) for job, image in zip(jobs, loaded, strict=True) if isinstance(image, np.ndarray)]
        for job, image in zip(jobs, loaded, strict=True):
            if not isinstance(image, np.ndarray):
                results[job[0]] = self._error(job[1], str(image), version)

        started = time.perf_counter()
        dets = self._detect(detector, [image for _, image in ok])
        totals["detect"] += time.perf_counter() - started

        started = time.perf_counter()
        good = [(job, det) for (job, _), det in zip(ok, dets, strict=True) if not isinstance(det, str)]
        for (job, _), det in zip(ok, dets, strict=True):
            if isinstance(det, str):
                results[job[0]] = self._error(job[1], det, version)
        if good:
            ids = [str(job[1]) for job, _ in good]
            pool = pool_from_detections(ids, [d for _, d in good], detector.names, list(label_map.class_to_label))
            values = self.scorer.values(pool, ids)
            for (job, det), value in zip(good, values, strict=True):
                results[job[0]] = task_prediction(det, label_map, self.conf_predict, to_ls_score(value), version)
        totals["convert"] += time.perf_counter() - started
        return results  # type: ignore[return-value]

    @staticmethod
    def _load(fetcher: ImageFetcher, ref: Any, task_id: Any) -> np.ndarray | str:
        try:
            return fetcher.load(ref, task_id if isinstance(task_id, int) else None)
        except ImageLoadError as exc:
            return f"cannot read the image: {exc.reason}: {exc.location}"
        except Exception as exc:  # noqa: BLE001 - one bad task must not fail the batch
            log.exception("task %s: unexpected error while reading its image", task_id)
            return f"cannot read the image: {type(exc).__name__}: {exc}"

    def _detect(self, detector: Any, images: list[np.ndarray]) -> list[Any]:
        """Detections per image; an image the detector fails on gets an error string instead."""
        if not images:
            return []
        kwargs = {
            "conf": self.conf_detect,
            "tta_flip": self.scorer.tta_flip,
            "divergence_radius": self.scorer.divergence_radius,
        }
        try:
            return list(detector.detect(images, **kwargs))
        except Exception:  # noqa: BLE001 - find the image that breaks the batch
            if len(images) == 1:
                log.exception("detection failed")
                return ["detection failed"]
        out: list[Any] = []
        for image in images:
            try:
                out.extend(detector.detect([image], **kwargs))
            except Exception as exc:  # noqa: BLE001
                log.exception("detection failed on one image")
                out.append(f"detection failed: {type(exc).__name__}: {exc}")
        return out

    @staticmethod
    def _error(task_id: Any, reason: str, version: str) -> dict[str, Any]:
        log.warning("task %s: no prediction: %s", task_id, reason)
        return {"task": task_id, "error": reason, "model_version": version}
