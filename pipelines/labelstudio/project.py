"""A Label Studio project as the cycle's source and sink, through label-studio-sdk.

The project is the dataset: `datasets.<name>: {format: labelstudio, project: ID}` with `url` and
`api_key` there or in LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, and `document_root` (Label
Studio's LOCAL_FILES_DOCUMENT_ROOT) to train on local-files images from disk. Tasks are read
with the same reader as a JSON export file, so frame ids, splits and boxes mean the same in both.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd


def connection(config: dict[str, Any]) -> tuple[str, str, int]:
    """(url, api key, project id) of a `format: labelstudio` dataset that names a project."""
    url = config.get("url") or os.environ.get("LABEL_STUDIO_URL")
    key = config.get("api_key") or os.environ.get("LABEL_STUDIO_API_KEY")
    project = config.get("project")
    missing = [
        n
        for n, v in (
            ("url (or LABEL_STUDIO_URL)", url),
            ("api_key (or LABEL_STUDIO_API_KEY)", key),
            ("project", project),
        )
        if not v
    ]
    if missing:
        raise ValueError(f"the Label Studio dataset needs {', '.join(missing)}")
    return str(url).rstrip("/"), str(key), int(project)  # type: ignore[arg-type]


def client(config: dict[str, Any]) -> Any:
    from label_studio_sdk import LabelStudio

    url, key, _ = connection(config)
    return LabelStudio(base_url=url, api_key=key, timeout=300)


def export_tasks(ls: Any, project: int) -> list[dict[str, Any]]:
    """Every task of the project with its annotations, as Label Studio's JSON export gives them."""
    chunks = ls.projects.exports.download_sync(project, export_type="JSON", download_all_tasks=True)
    raw = b"".join(chunks) if not isinstance(chunks, bytes) else chunks
    return json.loads(raw)


def ranked_scores(priority: pd.DataFrame, frames: pd.DataFrame) -> dict[int, float]:
    """Task id -> prediction score from select's priority: lower = shown first, rank-based in [0, 1)."""
    task_of = {f: json.loads(m).get("ls_task_id") for f, m in zip(frames["frame_id"], frames["meta"], strict=True)}
    merged = priority.assign(task=priority["frame_id"].map(task_of)).dropna(subset=["task"])
    return {int(t): float(1.0 - p) for t, p in zip(merged["task"], merged["priority"], strict=True)}


def view_payload(cycle: int, strategy: str, threshold: float) -> dict[str, Any]:
    """A Data Manager tab with this cycle's selected tasks, most informative first: the selected tasks
    are exactly those whose (our model version's) prediction score is below ``threshold``."""
    return {
        "title": f"alod cycle {cycle}: {strategy}",
        "filters": {
            "conjunction": "and",
            "items": [
                {"filter": "filter:tasks:predictions_score", "operator": "less", "type": "Number", "value": threshold},
            ],
        },
        "ordering": ["tasks:predictions_score"],
        "hiddenColumns": {"explore": HIDDEN_COLUMNS, "labeling": HIDDEN_COLUMNS},
    }


# Data Manager columns an alod tab hides, so the image and the prediction score are in view
HIDDEN_COLUMNS = [
    f"tasks:{c}"
    for c in (
        "inner_id",
        "completed_at",
        "annotators",
        "annotations_results",
        "annotations_ids",
        "predictions_model_versions",
        "predictions_results",
        "file_upload",
        "storage_filename",
        "created_at",
        "updated_at",
        "updated_by",
        "avg_lead_time",
        "draft_exists",
        "comment_authors",
        "comment_count",
        "last_comment_updated_at",
        "unresolved_comment_count",
        "cancelled_annotations",
        "total_predictions",
    )
]


def selection_threshold(scores: dict[int, float], selected_tasks: list[int]) -> float:
    """A score between the last selected task's and the next one's."""
    chosen = [scores[t] for t in selected_tasks]
    rest = sorted(v for t, v in scores.items() if t not in set(selected_tasks))
    top = max(chosen)
    return float((top + rest[0]) / 2) if rest else float(np.nextafter(top, 2.0))


TEST_TAB = "alod: test set — label these first"


def write_splits(config: dict[str, Any], frames: pd.DataFrame) -> int:
    """Write each task's split into its data (``data.split``) and make the test-set tab; returns tasks changed.

    The test split is what `evaluate` measures on, so its tasks must be labeled too: the tab lists them."""
    ls = client(config)
    _, _, project = connection(config)
    split_of = {json.loads(m).get("ls_task_id"): s for m, s in zip(frames["meta"], frames["split"], strict=True)}
    changed = 0
    for task in ls.tasks.list(project=project, page_size=200, include="id,data"):
        wanted = split_of.get(task.id)
        if wanted is not None and (task.data or {}).get("split") != wanted:
            ls.tasks.update(id=task.id, data={**(task.data or {}), "split": wanted})
            changed += 1
    view = {
        "title": TEST_TAB,
        "filters": {
            "conjunction": "and",
            "items": [{"filter": "filter:tasks:data.split", "operator": "equal", "type": "String", "value": "test"}],
        },
        "ordering": ["tasks:id"],
    }
    if not any((v.data or {}).get("title") == TEST_TAB for v in ls.views.list(project=project)):
        ls.views.create(project=project, data=view)
    return changed
