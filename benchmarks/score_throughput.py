"""Throughput and memory of the scoring pass against bare ``YOLO.predict``, measured in one run.

    python benchmarks/score_throughput.py                 # 200 images, RSS at 200 and 2,000
    python benchmarks/score_throughput.py --images 20 --rss 20,200
    python benchmarks/score_throughput.py --images 32 --rss '' --imgsz 320,640 --divergence none,pixels \
        --source '../shared/data/coco128/images/train2017/*.jpg' --table docs/scoring_speed.md --label after
    python benchmarks/score_throughput.py --images 32 --rss '' --profile 25   # where a scoring pass spends its time

Both passes read the same image files with the same weights, imgsz, batch and
thresholds (the scoring threshold, as the pool pass uses); the scoring pass also
computes class-probability vectors, box and image embeddings, spatial-divergence
maps and writes Parquet shards. Each pass runs ``--repeats`` times, interleaved, and
the fastest run of each is compared (the machine is shared). Peak RSS is measured in a
fresh process per pool size: it must not grow with the pool (the output goes to disk
chunk by chunk).

``--imgsz`` and ``--divergence`` take comma-separated lists: every combination is measured, each
against its own bare-predict baseline of the same run (``none``: no divergence maps; ``pixels``: the
settings of params.yaml ``detector.divergence_*``; ``grid``: the earlier rule at radius 1).
``--table FILE --label NAME`` appends the rows as a Markdown table section to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import io
import json
import os
import platform
import pstats
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.divergence import divergence_setting  # noqa: E402
from core.settings import (  # noqa: E402
    configure_environment,
    disable_ultralytics_integrations,
    load_params,
    resolve_path,
)

DEFAULT_SOURCE = "../shared/data/bccd/BCCD/JPEGImages/*.jpg"


def image_paths(params: dict, source: str, count: int) -> list[str]:
    pattern = str(resolve_path(params, source)) if not Path(source).is_absolute() else source
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no images match {pattern}")
    return [files[i % len(files)] for i in range(count)]


def frames_of(paths: list[str]):  # noqa: ANN201 - pandas imported lazily
    import pandas as pd

    n = len(paths)
    return pd.DataFrame(
        {
            "frame_id": [f"{i:06d}" for i in range(n)],
            "image": paths,
            "width": 0,
            "height": 0,
            "video": "",
            "frame": 0,
            "split": "train",
            "meta": "{}",
        }
    )


def settings(params: dict, args: argparse.Namespace, imgsz: int | None = None, divergence: str = "pixels") -> dict:
    det = params["detector"]
    radius: dict | int | None = {"none": None, "grid": 1}.get(divergence, divergence_setting(det))
    return {
        "weights": str(resolve_path(params, args.weights or params["model"]["base_weights"])),
        "imgsz": imgsz or params["model"]["imgsz"],
        "batch": args.batch or det["batch"],
        "conf": det["conf_score"],
        "iou": det["iou"],
        "max_det": det["max_det"],
        "radius": radius,
        "divergence": divergence,
    }


def score_once(detector, paths: list[str], cfg: dict, out_dir: Path) -> tuple[float, float]:  # noqa: ANN001
    """(wall seconds, CPU seconds of this process) of one scoring pass."""
    from pipelines.scoring.score import score_frames

    start, cpu = time.perf_counter(), time.process_time()
    score_frames(
        frames_of(paths),
        detector,
        out_dir,
        conf=cfg["conf"],
        divergence_radius=cfg["radius"],
        chunk_size=64,
        progress=False,
    )
    return time.perf_counter() - start, time.process_time() - cpu


def predict_once(model, paths: list[str], cfg: dict, tmp: Path) -> tuple[float, float]:  # noqa: ANN001
    # A .txt source streams batches of ``batch`` files; a Python list would be decoded whole into one batch.
    source = tmp / f"images-{len(paths)}.txt"
    source.write_text("\n".join(paths) + "\n")
    start, cpu = time.perf_counter(), time.process_time()
    for _ in model.predict(
        str(source),
        stream=True,
        verbose=False,
        imgsz=cfg["imgsz"],
        batch=cfg["batch"],
        conf=cfg["conf"],
        iou=cfg["iou"],
        max_det=cfg["max_det"],
        device=str(cfg["device"]),
    ):
        pass
    return time.perf_counter() - start, time.process_time() - cpu


def make_detector(cfg: dict, device: str):  # noqa: ANN201 - torch imported lazily
    from core.detector import Detector

    return Detector(
        cfg["weights"],
        imgsz=cfg["imgsz"],
        conf=cfg["conf"],
        iou=cfg["iou"],
        max_det=cfg["max_det"],
        batch=cfg["batch"],
        device=device,
    )


def measure(model, paths: list[str], cfg: dict, args: argparse.Namespace, tmp: Path) -> dict:  # noqa: ANN001
    """Best-of-``repeats`` interleaved passes of bare predict and of the scoring pass for one setting."""
    detector = make_detector(cfg, args.device)
    cfg = {**cfg, "device": detector.device}
    predict_once(model, paths[: cfg["batch"]], cfg, tmp)  # warm-up: model load, first-call allocations
    score_once(detector, paths[: cfg["batch"]], cfg, tmp / "warm")
    predict_s, score_s = [], []
    for r in range(args.repeats):  # interleaved: a slow moment of the shared machine hits both
        predict_s.append(predict_once(model, paths, cfg, tmp))
        score_s.append(score_once(detector, paths, cfg, tmp / f"run-{cfg['imgsz']}-{cfg['divergence']}-{r}"))
    n = len(paths)
    p_wall, p_cpu = (min(t[i] for t in predict_s) for i in (0, 1))
    s_wall, s_cpu = (min(t[i] for t in score_s) for i in (0, 1))
    return {
        "imgsz": cfg["imgsz"],
        "divergence": cfg["divergence"],
        "images": n,
        "batch": cfg["batch"],
        "device": str(detector.device),
        "predict_img_s": n / p_wall,
        "score_img_s": n / s_wall,
        "ratio": p_wall / s_wall,
        "cpu_ratio": p_cpu / s_cpu,
        "predict_runs": runs(predict_s, 0),
        "score_runs": runs(score_s, 0),
    }


def throughput(params: dict, args: argparse.Namespace) -> list[dict]:
    configure_environment()
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    paths = image_paths(params, args.source, args.images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for imgsz in args.imgsz or [None]:
            for divergence in args.divergence:
                cfg = settings(params, args, imgsz, divergence)
                row = measure(YOLO(cfg["weights"]), paths, cfg, args, Path(tmp))
                rows.append(row)
                print(
                    f"imgsz {row['imgsz']}, divergence {row['divergence']}: bare YOLO.predict "
                    f"{row['predict_img_s']:7.1f} img/s (wall: {row['predict_runs']}); scoring pass "
                    f"{row['score_img_s']:7.1f} img/s (wall: {row['score_runs']})",
                    flush=True,
                )
                print(
                    f"  ratio scoring / predict, images per second: {row['ratio']:.2f}  (target >= 0.85); "
                    f"CPU time per image, predict / scoring: {row['cpu_ratio']:.2f}",
                    flush=True,
                )
    print(
        f"images: {len(paths)}  weights: {Path(settings(params, args)['weights']).name}  batch: {rows[0]['batch']}  "
        f"device: {rows[0]['device']}  torch threads: {torch_threads()}"
    )
    return rows


def profile(params: dict, args: argparse.Namespace) -> None:
    """cProfile of `Detector.detect` over the images in batches, as the scoring pass calls it (without its
    loader threads, which cProfile does not see): the functions that take the host's time."""
    configure_environment()
    disable_ultralytics_integrations()
    from core.images import load_image

    cfg = settings(params, args, (args.imgsz or [None])[0], args.divergence[0])
    images = [load_image(p) for p in image_paths(params, args.source, args.images)]
    detector = make_detector(cfg, args.device)
    batch = cfg["batch"]
    detector.detect(images[:batch], conf=cfg["conf"], divergence_radius=cfg["radius"])  # warm-up
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for i in range(0, len(images), batch):
        detector.detect(images[i : i + batch], conf=cfg["conf"], divergence_radius=cfg["radius"])
    prof.disable()
    seconds = time.perf_counter() - start
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.profile)
    print(
        f"Detector.detect on {len(images)} images, imgsz {cfg['imgsz']}, "
        f"divergence {cfg['divergence']}: {seconds:.2f} s"
    )
    print(out.getvalue())


def write_table(path: Path, label: str, rows: list[dict], command: str) -> None:
    """Append one labelled Markdown table (the rows of one run) to ``path``."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = platform.processor() or platform.machine()
    head = (
        f"## {label}\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu}, "
        f"{os.cpu_count()} CPUs (load average {load:.1f} at the end), torch threads {torch_threads()}, "
        f"device {rows[0]['device']}; {rows[0]['images']} images, batch {rows[0]['batch']}, best of "
        f"the interleaved runs.\n\n`{command}`\n\n"
        "| imgsz | divergence | bare predict img/s | score img/s | ratio score / predict "
        "| CPU-time ratio predict / score |\n|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['imgsz']} | {r['divergence']} | {r['predict_img_s']:.1f} | {r['score_img_s']:.1f} | {r['ratio']:.2f} "
        f"| {r['cpu_ratio']:.2f} |\n"
        for r in rows
    )
    with open(path, "a") as f:
        f.write(head + body + "\n")


def runs(times: list[tuple[float, float]], i: int) -> str:
    return ", ".join(f"{t[i]:.2f}s" for t in times)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def rss_child(params: dict, args: argparse.Namespace) -> None:
    """Score ``--rss-child`` images in this fresh process and print its peak RSS as JSON."""
    configure_environment()
    disable_ultralytics_integrations()
    cfg = settings(params, args, (args.imgsz or [None])[0], args.divergence[0])
    paths = image_paths(params, args.source, args.rss_child)
    detector = make_detector(cfg, args.device)
    loaded_mb = rss_now_mb()
    with tempfile.TemporaryDirectory() as tmp:
        seconds = score_once(detector, paths, cfg, Path(tmp))[0]
        out_mb = sum(p.stat().st_size for p in Path(tmp).glob("*")) / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "images": len(paths),
                "loaded_rss_mb": round(loaded_mb, 1),
                "peak_rss_mb": round(peak_mb, 1),
                "out_mb": round(out_mb, 1),
                "seconds": round(seconds, 1),
            }
        )
    )


def rss_now_mb() -> float:
    """Resident set size now (Linux), to tell the model's own footprint from what scoring adds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(args: argparse.Namespace) -> None:
    rows = []
    for count in args.rss:
        cmd = [sys.executable, __file__, "--rss-child", str(count), "--source", args.source]
        for flag in ("weights", "batch", "device"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag}", str(getattr(args, flag))]
        if args.imgsz:
            cmd += ["--imgsz", str(args.imgsz[0])]
        cmd += ["--divergence", args.divergence[0]]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:
        print(
            f"peak RSS at {row['images']:>6} images: {row['peak_rss_mb']:7.1f} MiB  "
            f"(model loaded: {row['loaded_rss_mb']:.1f} MiB; scored in {row['seconds']:.1f} s, "
            f"{row['out_mb']:.1f} MiB written)"
        )
    if len(rows) > 1:
        growth = rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
        print(f"RSS growth {rows[0]['images']} -> {rows[-1]['images']} images: {growth:+.1f} MiB")


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="pool size of the throughput comparison")
    parser.add_argument(
        "--rss",
        type=int_list,
        default=[200, 2000],
        help="pool sizes for peak RSS, comma-separated ('' to skip)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="glob of images (repeated to the pool size)")
    parser.add_argument("--weights")
    parser.add_argument("--imgsz", type=int_list, help="input size(s), comma-separated (default: model.imgsz)")
    parser.add_argument(
        "--divergence",
        type=lambda s: [x for x in s.split(",") if x],
        default=["pixels"],
        help="none, pixels (params.yaml detector.divergence_*), grid (radius 1): comma-separated",
    )
    parser.add_argument("--table", type=Path, help="append the throughput rows as a Markdown table to this file")
    parser.add_argument("--label", default="scoring pass vs bare predict", help="heading of the --table section")
    parser.add_argument("--profile", type=int, help="cProfile Detector.detect and print this many functions")
    parser.add_argument("--sort", default="tottime", help="pstats order of --profile (tottime, cumulative)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    params = load_params()
    if args.rss_child:
        rss_child(params, args)
        return 0
    if args.profile:
        profile(params, args)
        return 0
    if args.images:
        rows = throughput(params, args)
        if args.table:
            command = "python benchmarks/score_throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:])
            write_table(args.table, args.label, rows, command)
    if args.rss:
        memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
