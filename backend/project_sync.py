"""Keep the Label Studio project the backend answers in step with the predictions it stores.

Label Studio computes a task's "Prediction score" (the Data Manager column, its ordering, and the
uncertainty-sampling queue) only from predictions whose ``model_version`` equals the project's
model version. When the backend answers ``/predict`` for a project it can reach, it sets the
project's model version to the version of the predictions it returned (and, with the live queue
on, the project's sampling to "Uncertainty sampling"), once per project and version per worker,
in the background so the answer is not delayed.

Credentials go to one place only: the ``LABEL_STUDIO_URL`` with the key from the environment, or
the hostname that Label Studio's ``/setup`` sent with its own token; never a mix of the two.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from core.predictions import UNCERTAINTY_SAMPLING

log = logging.getLogger(__name__)

_PROJECT = re.compile(r"^(\d{1,12})(?:\.\d+)?$")  # Label Studio sends "<project id>.<timestamp>"


def project_id(value: Any) -> int | None:
    """The project id of a /predict body's ``project`` field, None when absent or malformed."""
    match = _PROJECT.match(str(value)) if value is not None else None
    return int(match.group(1)) if match else None


class ProjectSync:
    def __init__(self, set_model_version: bool, live_queue: bool) -> None:
        self.set_model_version, self.live_queue = set_model_version, live_queue
        self._done: set[tuple[str, int, str]] = set()
        self._lock = threading.Lock()

    def update(self, url: str | None, api_key: str | None, project: int | None, version: str) -> bool:
        """Start updating ``project`` to ``version`` unless already done; False when nothing is to do."""
        if not (self.set_model_version or self.live_queue) or not url or not api_key or project is None:
            return False
        key = (url, project, version)
        with self._lock:
            if key in self._done:
                return False
            self._done.add(key)
        threading.Thread(target=self._patch, args=(url, api_key, project, version, key), daemon=True).start()
        return True

    def _patch(self, url: str, api_key: str, project: int, version: str, key: tuple[str, int, str]) -> None:
        fields: dict[str, Any] = {}
        if self.set_model_version:
            fields["model_version"] = version
        if self.live_queue:
            fields["sampling"] = UNCERTAINTY_SAMPLING
        try:
            from label_studio_sdk import LabelStudio

            LabelStudio(base_url=url, api_key=api_key, timeout=30).projects.update(id=project, **fields)
            log.info("project %d: %s", project, ", ".join(f"{k} = {v}" for k, v in fields.items()))
        except Exception as exc:  # noqa: BLE001 - ordering is a convenience; predictions are stored anyway
            with self._lock:
                self._done.discard(key)  # try again with the next batch
            log.warning("project %d: could not set %s: %s: %s", project, sorted(fields), type(exc).__name__, exc)
