"""The Markdown table of README / docs/runtime.md from `serve_load.py --json` files.

    python benchmarks/serve_table.py run-320.json run-160.json [--label old=before.json ...]

One row per HTTP run of each file (a file from ``--clients 16,64 --compare-batching`` has four).
``NAME=FILE`` labels a file's rows (e.g. the same run at the previous commit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = (
    "| code | imgsz | workers x torch threads | batching | clients | HTTP p50 | bare p50 at that concurrency | ratio "
    "| HTTP req/s | bare img/s | 1 client: HTTP p50 / bare read + detect | errors |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def runs_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The file's HTTP runs (files written before ``runs`` existed hold one, under ``http``)."""
    if data.get("runs"):
        return data["runs"]
    res = data["results"]
    detect = (res["bare_detect"]["p50_ms"] + res["bare_after_detect"]["p50_ms"]) / 2
    clients, workers = data.get("clients", 16), data.get("workers", 2)
    return [
        {
            "clients": clients,
            "batching": data.get("batching", False),
            "p50_ms": res["http"]["p50_ms"],
            "per_s": res["http"]["per_s"],
            "bare_p50_at_concurrency_ms": clients * detect / workers,
            "p50_vs_bare_at_same_concurrency": data["ratios"]["p50_vs_bare_at_same_concurrency"],
        }
    ]


def rows(label: str, data: dict[str, Any]) -> list[str]:
    res = data["results"]
    bare_rate = (res["bare_read"]["per_s"] + res["bare_after_read"]["per_s"]) / 2
    single = data["ratios"].get("single_vs_read_detect")
    single_text = (
        f"{res['http_single']['p50_ms']:.1f} ms / {res['bare_single_read']['p50_ms']:.1f} ms = {single:.2f}"
        if single
        else "-"
    )
    out = []
    for run in runs_of(data):
        out.append(
            f"| {label} | {data.get('imgsz', '-')} | {data.get('workers', 2)} x {data.get('torch_threads', 1)} | "
            f"{'on' if run['batching'] else 'off'} | {run['clients']} | {run['p50_ms']:.0f} ms | "
            f"{run['bare_p50_at_concurrency_ms']:.0f} ms | **{run['p50_vs_bare_at_same_concurrency']:.2f}** | "
            f"{run['per_s']:.0f} | {bare_rate:.0f} | {single_text} | {data.get('errors', 0)} |"
        )
    return out


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    print(HEADER)
    for arg in argv:
        label, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
        data = json.loads(Path(path).read_text())
        print("\n".join(rows(label or "this", data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
