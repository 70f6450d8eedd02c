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


def settings_file(path: Path, **sections: dict) -> Path:
    """A complete params.yaml at ``path``: the repository's, with ``sections`` merged in (key by key)."""
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for name, values in sections.items():
        params[name] = {**params[name], **values} if isinstance(params.get(name), dict) else values
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
