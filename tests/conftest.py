"""Shared fixtures: settings, the ../shared data beside the repo, a project-local environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import REPO_ROOT, configure_environment, load_params

configure_environment()

SHARED = (REPO_ROOT.parent / "shared").resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.fail(f"../shared is missing: expected the shared data at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params()
