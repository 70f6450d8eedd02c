"""Model weights are unpickled: a registry version is served only if its file matches the recorded digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.model_store import DIGEST_TAG, fetch_weights, resolve, sha256_file

WEIGHTS = "weights/yolo11n-coco.pt"


@pytest.fixture
def registry(tmp_path: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("weights", artifact_location=str(tmp_path / "artifacts"))
    client.create_registered_model("alod-w")

    def register(weights: Path, tags: dict[str, str]) -> str:
        run = client.create_run(experiment)
        client.log_artifact(run.info.run_id, str(weights), artifact_path="model")
        source = f"{run.info.artifact_uri}/model"
        return str(client.create_model_version("alod-w", source, run.info.run_id, tags=tags).version)

    return uri, register


def test_a_version_whose_file_matches_its_recorded_digest_is_served(shared, tmp_path, registry):
    uri, register = registry
    weights = shared / WEIGHTS
    version = register(weights, {DIGEST_TAG: sha256_file(weights)})
    ref = fetch_weights(resolve(f"models:/alod-w/{version}", uri), tmp_path / "cache", uri)
    assert ref.weights is not None and sha256_file(ref.weights) == sha256_file(weights)


@pytest.mark.parametrize("tags", [{}, {DIGEST_TAG: "0" * 64}], ids=["no-digest", "other-digest"])
def test_a_version_without_or_with_another_digest_is_refused(shared, tmp_path, registry, tags):
    uri, register = registry
    version = register(shared / WEIGHTS, tags)
    with pytest.raises(ValueError, match=DIGEST_TAG if not tags else "differs"):
        fetch_weights(resolve(f"models:/alod-w/{version}", uri), tmp_path / "cache", uri)
