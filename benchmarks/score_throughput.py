"""Throughput and memory of the scoring pass against bare ``YOLO.predict``, measured in one run.

    python benchmarks/score_throughput.py                 # 200 images, RSS at 200 and 2,000
    python benchmarks/score_throughput.py --images 20 --rss 20,200

Both passes read the same image files with the same weights, imgsz, batch and
thresholds (the scoring threshold, as the pool pass uses); the scoring pass also
computes class-probability vectors, box and image embeddings, spatial-divergence
maps and writes Parquet shards. Each pass runs ``--repeats`` times, interleaved, and
the fastest run of each is compared (the machine is shared). Peak RSS is measured in a
fresh process per pool size: it must not grow with the pool (the output goes to disk
chunk by chunk).
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
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


def settings(params: dict, args: argparse.Namespace) -> dict:
    det = params["detector"]
    return {
        "weights": str(resolve_path(params, args.weights or params["model"]["base_weights"])),
        "imgsz": args.imgsz or params["model"]["imgsz"],
        "batch": args.batch or det["batch"],
        "conf": det["conf_score"],
        "iou": det["iou"],
        "max_det": det["max_det"],
        "radius": divergence_setting(det),
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
    ):
        pass
    return time.perf_counter() - start, time.process_time() - cpu


def throughput(params: dict, args: argparse.Namespace) -> None:
    configure_environment()
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    from core.detector import Detector

    cfg = settings(params, args)
    paths = image_paths(params, args.source, args.images)
    model = YOLO(cfg["weights"])
    detector = Detector(
        cfg["weights"],
        imgsz=cfg["imgsz"],
        conf=cfg["conf"],
        iou=cfg["iou"],
        max_det=cfg["max_det"],
        batch=cfg["batch"],
        device=args.device,
    )
    with tempfile.TemporaryDirectory() as tmp:
        predict_once(model, paths[: cfg["batch"]], cfg, Path(tmp))  # warm-up: model load, first-call allocations
        score_once(detector, paths[: cfg["batch"]], cfg, Path(tmp) / "warm")
        predict_s, score_s = [], []
        for r in range(args.repeats):
            predict_s.append(predict_once(model, paths, cfg, Path(tmp)))
            score_s.append(score_once(detector, paths, cfg, Path(tmp) / f"run{r}"))
    n = len(paths)
    p_wall, p_cpu = (min(t[i] for t in predict_s) for i in (0, 1))
    s_wall, s_cpu = (min(t[i] for t in score_s) for i in (0, 1))
    print(
        f"images: {n}  weights: {Path(cfg['weights']).name}  imgsz: {cfg['imgsz']}  batch: {cfg['batch']}  "
        f"conf: {cfg['conf']}  device: {detector.device}  torch threads: {torch_threads()}"
    )
    print(f"bare YOLO.predict : {n / p_wall:7.1f} img/s  (wall: {runs(predict_s, 0)}; cpu: {runs(predict_s, 1)})")
    print(f"scoring pass      : {n / s_wall:7.1f} img/s  (wall: {runs(score_s, 0)}; cpu: {runs(score_s, 1)})")
    print(f"ratio scoring / predict, images per second: {p_wall / s_wall:.2f}  (target >= 0.85)")
    print(f"ratio of CPU time per image, predict / scoring: {p_cpu / s_cpu:.2f}  (all threads of the process)")


def runs(times: list[tuple[float, float]], i: int) -> str:
    return ", ".join(f"{t[i]:.2f}s" for t in times)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def rss_child(params: dict, args: argparse.Namespace) -> None:
    """Score ``--rss-child`` images in this fresh process and print its peak RSS as JSON."""
    configure_environment()
    disable_ultralytics_integrations()
    from core.detector import Detector

    cfg = settings(params, args)
    paths = image_paths(params, args.source, args.rss_child)
    detector = Detector(
        cfg["weights"],
        imgsz=cfg["imgsz"],
        conf=cfg["conf"],
        iou=cfg["iou"],
        max_det=cfg["max_det"],
        batch=cfg["batch"],
        device=args.device,
    )
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
        for flag in ("weights", "imgsz", "batch", "device"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag}", str(getattr(args, flag))]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="pool size of the throughput comparison")
    parser.add_argument(
        "--rss",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[200, 2000],
        help="pool sizes for peak RSS, comma-separated ('' to skip)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="glob of images (repeated to the pool size)")
    parser.add_argument("--weights")
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    params = load_params()
    if args.rss_child:
        rss_child(params, args)
        return 0
    if args.images:
        throughput(params, args)
    if args.rss:
        memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
