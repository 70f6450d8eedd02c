"""`dvc repro` reruns a stage when its code changes: every stage lists its module and all it imports."""

from __future__ import annotations

import yaml

from core.settings import REPO_ROOT
from pipelines.cli import COMMANDS
from tests.test_architecture import all_modules, import_graph


def code_of_stage(command_module: str) -> set[str]:
    """The modules of ours a stage runs: its own, what it imports (at any depth), and the packages'
    ``__init__`` on the way that import something (``strategies/__init__`` registers every strategy)."""
    graph, seen, todo = import_graph(), set(), [command_module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(graph.get(name, ()))
        parents = (".".join(parts[:end]) for end in range(1, len(parts)))
        todo.extend(parent for parent in parents if graph.get(parent))  # an __init__ that imports nothing: no code
    return seen


def covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def test_each_stage_depends_on_all_the_code_it_runs() -> None:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    files = all_modules()
    missing = {}
    for name, stage in stages.items():
        command = stage["cmd"].split()[1]
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
        paths = {str(files[module].relative_to(REPO_ROOT)) for module in code_of_stage(COMMANDS[command][0])}
        uncovered = sorted(path for path in paths if not any(covers(dep, path) for dep in deps))
        if uncovered:
            missing[name] = uncovered
    assert missing == {}


def test_evaluate_and_train_depend_on_the_manifest() -> None:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert "data/manifest" in stages["evaluate"]["deps"] and "data/manifest" in stages["train"]["deps"]
