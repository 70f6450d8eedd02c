"""Regenerate the tables of docs/benchmarks.md from the committed report folders' results.csv.

    python -m pipelines.benchmark.headline docs/benchmarks.md

The page marks what is generated with HTML comments, and the rest of it is left as it is:

    <!-- headline bccd video -->   ...   <!-- /headline -->   one row per report folder named
    <!-- table bccd -->            ...   <!-- /table -->      that folder's settings, run and comparison

Folder names are relative to docs/benchmarks/ next to the page.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.settings import REPO_ROOT
from pipelines.benchmark.machine import read_run
from pipelines.benchmark.report import comparison_table, markdown_table, run_line, settings_line
from pipelines.benchmark.stats import BASELINE, comparison, fmt_saving

CONFIGS = REPO_ROOT / "benchmarks" / "configs"
HEADLINE_COLUMNS = ["benchmark", "seeds", "arms", "best strategy", "boxes saved [95 % CI]"]
HEADLINE_COLUMNS += ["frames saved [95 % CI]", "reproduce"]
BLOCK = re.compile(r"<!-- (headline|table) ([^>]*?) -->\n.*?<!-- /\1 -->", re.S)


def _config(folder: Path) -> dict[str, Any] | None:
    for path in (folder / "config.yaml", CONFIGS / f"{folder.name}.yaml"):
        if path.exists():
            return yaml.safe_load(path.read_text())
    return None


def _command(folder: Path) -> str:
    if folder.name.startswith("hardhat_gpu"):
        return "`benchmarks/gpu_profile.sh OUTDIR`"
    config = CONFIGS / f"{folder.name}.yaml"
    return f"`alod benchmark --config benchmarks/configs/{config.name}`" if config.exists() else "(no config)"


def headline_row(folder: Path) -> dict[str, str]:
    """Best strategy (paired test better, then largest mAP gain), its savings, and how to rerun."""
    if not (folder / "results.csv").exists():
        return {"benchmark": folder.name, "best strategy": "not run yet", "reproduce": _command(folder)}
    results = pd.read_csv(folder / "results.csv")
    comp = comparison(results)
    others = comp[comp["strategy"] != BASELINE]
    row = {
        "benchmark": f"[{folder.name}](benchmarks/{folder.name}/report.md)",
        "seeds": str(int(comp["seeds"].min())),
        "arms": str(len(comp)),
    }
    if others.empty or "verdict" not in comp:
        return {**row, "best strategy": "no random baseline", "reproduce": _command(folder)}
    better = others[others["verdict"] == "better"]
    pick = (better if len(better) else others).sort_values("final_minus_random", ascending=False).iloc[0]
    saved = fmt_saving(pick["boxes_saving"], pick["boxes_saving_low"], pick["boxes_saving_high"])
    frames = fmt_saving(pick["frames_saving"], pick["frames_saving_low"], pick["frames_saving_high"])
    if len(better):
        best = f"**{pick['strategy']}** (+{pick['final_minus_random']:.3f} mAP50-95, p = {pick['p_value']:.3f})"
    else:
        closest = f"{pick['strategy']}, {pick['final_minus_random']:+.3f}, p = {pick['p_value']:.2f}"
        best = f"none beats random at 5 % (closest: {closest})"
    if math.isnan(pick["boxes_saving"]):
        saved = frames = "n/a: random's mAP did not rise"
    row.update({"best strategy": best, "boxes saved [95 % CI]": saved, "frames saved [95 % CI]": frames})
    return {**row, "reproduce": _command(folder)}


def table_block(folder: Path) -> str:
    if not (folder / "results.csv").exists():
        return f"Not run yet: no results.csv in docs/benchmarks/{folder.name}/."
    results = pd.read_csv(folder / "results.csv")
    settings, run = settings_line(_config(folder)), run_line(read_run(folder), results)
    return "\n".join([settings, "", run, "", markdown_table(comparison_table(results))])


def regenerate(page: Path) -> str:
    base = page.parent / "benchmarks"

    def block(match: re.Match[str]) -> str:
        kind, names = match.group(1), match.group(2).split()
        if kind == "headline":
            rows = pd.DataFrame([headline_row(base / n) for n in names])
            body = markdown_table(rows.reindex(columns=HEADLINE_COLUMNS).fillna(""))
        else:
            body = table_block(base / names[0])
        return f"<!-- {kind} {match.group(2)} -->\n{body}\n<!-- /{kind} -->"

    return BLOCK.sub(block, page.read_text())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    page = Path(args[0] if args else "docs/benchmarks.md")
    page.write_text(regenerate(page))
    print(f"regenerated the tables of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
