"""The `alod` command. Each subcommand lives in its own module with two functions:

    configure(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

Modules are imported only when their command runs, so `alod --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("pipelines.stages.import_data", "import a dataset into the pool manifest"),
    "write-yolo": ("pipelines.stages.write_yolo", "write the manifest as a YOLO dataset ultralytics trains on"),
    "score": ("pipelines.scoring.score", "one forward pass over the pool: boxes, class probabilities, embeddings"),
    "seed": ("pipelines.stages.seed", "simulation: the initial random labeled set, answered by the oracle"),
    "export": ("pipelines.stages.export", "stage: annotations so far -> this cycle's labeled snapshot"),
    "train": ("pipelines.stages.train", "stage: fine-tune YOLO on the labeled snapshot (MLflow run per cycle)"),
    "evaluate": ("pipelines.stages.evaluate", "stage: mAP on the test split, cost metrics, model registered"),
    "select": ("pipelines.stages.select", "stage: the configured strategy over the scored pool -> ranked queries"),
    "push": ("pipelines.stages.push", "stage: send the queries (simulation: the oracle answers them)"),
    "summary": ("pipelines.stages.summary", "print the table of cycles and where to open the MLflow UI"),
    "benchmark": ("pipelines.benchmark.harness", "strategies against random with the oracle: table, plots, savings"),
    "push-predictions": (
        "pipelines.labelstudio.push_predictions",
        "write predictions for a whole Label Studio project via the SDK",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alod", description="Active learning for object detection.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help or the error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    command = argparse.ArgumentParser(prog=f"alod {name}", description=COMMANDS[name][1])
    command.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    module.configure(command)
    args = command.parse_args(argv[1:])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as error:  # bad input: one clear line, no traceback
        if args.verbose:
            raise
        print(f"alod {name}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
