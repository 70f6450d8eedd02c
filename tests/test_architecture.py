"""The dependency graph a newcomer can draw: strategies <- core <- {backend, pipelines}, no circles.

Every import of every module counts, also the ones inside functions (a lazy import is still a
dependency); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from core.settings import REPO_ROOT

PACKAGES = ("strategies", "core", "backend", "pipelines")
ALLOWED = {  # package -> the packages of ours it may import (besides itself)
    "strategies": set(),
    "core": {"strategies"},
    "backend": {"core", "strategies"},
    "pipelines": {"core", "strategies"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO_ROOT / pkg).rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `name` imports (resolved to the longest known module name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name in `base`
        for target in targets:
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known and candidate != name:
                    found.add(candidate)
                    break
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    graph = {name: imports_of(name, path, known) for name, path in modules.items()}
    # importing a sibling runs the parent package's __init__, which imports nothing of ours by design
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_function_level_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import core.detector\n"
        "def f():\n    from core import scoring\n"
    )
    assert imports_of("x.m", source, {"core", "core.detector", "core.scoring"}) == {"core.scoring"}


def test_the_cycle_finder_finds_a_constructed_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back_through_others() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_packages_import_only_what_the_layout_allows() -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        for target in targets
        if (src := name.split(".")[0]) != (dst := target.split(".")[0]) and dst not in ALLOWED[src]
    )
    assert wrong == []


def test_the_readme_layout_names_only_folders_that_exist() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    named, parent = [], ""
    for line in block.splitlines():
        words = line.split()
        if not words or not words[0].endswith("/"):
            continue
        if line.startswith("  "):  # an indented entry lives in the folder above it
            named.append(parent + words[0])
        else:
            parent = words[0]
            named.append(words[0])
    missing = [name for name in named if not (REPO_ROOT / name).is_dir()]
    assert len(named) >= 10 and missing == []
    packages = {p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert packages <= {n.rstrip("/") for n in named}  # and every package is named
