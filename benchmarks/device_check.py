"""The GPU numbers in one run: scoring vs bare YOLO.predict, /predict under load, a short training run.

    benchmarks/device_check.sh OUTDIR                    # on a machine with one NVIDIA GPU (~4 minutes)
    DEVICE_CHECK_QUICK=1 benchmarks/device_check.sh OUTDIR   # tiny CPU run that proves the script works

Sections (each one's failure is recorded and the next one still runs; the report is rewritten after
every section, so a run cut short keeps what it measured):

1. ``score``: the `score` stage's `score_frames` against bare ``YOLO.predict`` on the same image files,
   batch 32, fp16 and fp32: images/s of each and their ratio (best of two interleaved runs).
2. ``serve``: `benchmarks/serve_load.py` with 16 and 64 concurrent clients, with and without
   cross-request batching: HTTP p50 / p95, requests/s, ratio to bare inference at that concurrency.
3. ``train``: `pipelines.cycle.yolo_ops.train_yolo` for ``epochs`` epochs on the image folder (its
   YOLO labels, or the model's own predictions written as labels when it has none).
4. GPU memory: torch's peak allocation per in-process section, and the device's peak used memory
   (nvidia-smi sampled every 0.5 s, all processes: the gunicorn workers too).

Inputs (environment): ALOD_WEIGHTS (a YOLO .pt, default model.base_weights), ALOD_IMAGES (a folder
of images, default ../shared/data/coco128/images/train2017), ALOD_IMGSZ (default 640; 160 quick).
Needs torch, ultralytics, flask, gunicorn, PyYAML, pandas, pyarrow, requests; NOT mlflow, dvc or
label-studio-sdk (without the SDK the backend parses the benchmark's label config with
benchmarks/device_stub). Writes OUTDIR/device_check.json and OUTDIR/device_check.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUICK = os.environ.get("DEVICE_CHECK_QUICK", "") not in ("", "0", "false")
NEEDED = ("torch", "ultralytics", "flask", "gunicorn", "yaml", "pandas", "pyarrow", "requests", "cv2")


class GpuSampler:
    """Peak memory.used of GPU 0 (MiB, every process) from nvidia-smi, sampled in a thread."""

    def __init__(self) -> None:
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and shutil.which("nvidia-smi"):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.strip()
                self.peak_mib = max(self.peak_mib or 0.0, float(out.splitlines()[0]))
            except (subprocess.SubprocessError, ValueError, IndexError, OSError):
                return
            self._stop.wait(0.5)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": QUICK,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "missing": [m for m in NEEDED if importlib.util.find_spec(m) is None],
        "label_studio_sdk": importlib.util.find_spec("label_studio_sdk") is not None,
    }
    import torch

    info["torch"] = torch.__version__
    info["cuda"] = torch.cuda.is_available()
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    if importlib.util.find_spec("ultralytics"):
        import ultralytics

        info["ultralytics"] = ultralytics.__version__
    return info


def image_files(folder: Path, count: int) -> list[str]:
    files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    if not files:
        raise SystemExit(f"no images in {folder} (set ALOD_IMAGES)")
    return [files[i % len(files)] for i in range(count)]


def peak_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


# -- 1. the score stage vs bare YOLO.predict ----------------------------------------------------------


def score_section(weights: str, images: list[str], imgsz: int, batch: int, tmp: Path) -> dict[str, Any]:
    import torch

    source = tmp / "images.txt"  # a .txt source streams batches of files, as the pool pass reads them
    source.write_text("\n".join(images) + "\n")
    out: dict[str, Any] = {"images": len(images), "imgsz": imgsz, "batch": batch}
    for half in (True, False) if torch.cuda.is_available() else (False,):
        out["fp16" if half else "fp32"] = score_vs_predict(weights, images, source, imgsz, batch, half, tmp)
    return out


def score_vs_predict(
    weights: str, images: list[str], source: Path, imgsz: int, batch: int, half: bool, tmp: Path
) -> dict[str, Any]:
    """Best-of-two images/s of `score_frames` and of ``YOLO.predict`` at one precision."""
    from benchmarks.score_throughput import frames_of
    from core.detector import Detector
    from core.settings import disable_ultralytics_integrations
    from pipelines.scoring.score import score_frames

    disable_ultralytics_integrations()
    from ultralytics import YOLO

    peak_reset()
    model = YOLO(weights)
    detector = Detector(weights, imgsz=imgsz, batch=batch, conf=0.05, half=half)

    def predict(paths: str) -> float:
        started = time.perf_counter()
        for _ in model.predict(paths, stream=True, verbose=False, imgsz=imgsz, batch=batch, conf=0.05, half=half):
            pass
        return time.perf_counter() - started

    def score(paths: list[str], run: str) -> float:
        started = time.perf_counter()
        score_frames(
            frames_of(paths),
            detector,
            tmp / f"{half}-{run}",
            conf=0.05,
            divergence_radius=1,
            chunk_size=64,
            progress=False,
        )
        return time.perf_counter() - started

    warm = tmp / "warm.txt"
    warm.write_text("\n".join(images[:batch]) + "\n")
    predict(str(warm))
    score(images[:batch], "warm")
    p_s, s_s = [], []
    for r in range(2):  # interleaved: a slow moment of the machine hits both
        p_s.append(predict(str(source)))
        s_s.append(score(images, str(r)))
    n = len(images)
    return {
        "predict_img_s": round(n / min(p_s), 1),
        "score_img_s": round(n / min(s_s), 1),
        "ratio_score_vs_predict": round(min(p_s) / min(s_s), 3),
        "seconds": {"predict": [round(x, 2) for x in p_s], "score": [round(x, 2) for x in s_s]},
        "torch_peak_mib": peak_mib(),
    }


# -- 2. /predict under load ----------------------------------------------------------------------------


def serve_section(
    weights: str, images: list[str], imgsz: int, clients: list[int], requests_n: int, out_dir: Path
) -> dict[str, Any]:
    env = dict(os.environ)
    if importlib.util.find_spec("label_studio_sdk") is None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "benchmarks" / "device_stub"), str(REPO), env.get("PYTHONPATH", "")]
        )
    result_file = out_dir / "serve_load.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "serve_load.py"),
        "--image",
        images[0],
        "--imgsz",
        str(imgsz),
        "--clients",
        ",".join(map(str, clients)),
        "--compare-batching",
        "--workers",
        "1",
        "--weights",
        weights,
        "--requests",
        str(requests_n),
        "--single",
        "30",
        "--json",
        str(result_file),
    ]
    with open(out_dir / "serve_load.txt", "w") as log:
        done = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    text = (out_dir / "serve_load.txt").read_text()
    if not result_file.is_file():
        raise RuntimeError(f"serve_load.py exited {done.returncode}: {text[-2000:]}")
    out = json.loads(result_file.read_text())
    out["exit_code"] = done.returncode
    return out


# -- 3. a short training run ---------------------------------------------------------------------------


def training_data(weights: str, folder: Path, tmp: Path, imgsz: int) -> tuple[Path, str]:
    """A data.yaml over ``folder``: its YOLO labels (../labels/<name>) or the model's own predictions."""
    from ultralytics import YOLO

    model = YOLO(weights)
    names = dict(model.names)
    labels = folder.parent.parent / "labels" / folder.name
    if folder.parent.name == "images" and labels.is_dir() and any(labels.glob("*.txt")):
        root, source = folder.parent.parent, "the folder's YOLO labels"
        train = f"images/{folder.name}"
    else:
        root, source = tmp / "pseudo", "the model's own predictions (conf 0.25) as labels"
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir(parents=True)
        for path in image_files(folder, len(list(folder.iterdir())))[:128]:
            target = root / "images" / Path(path).name
            if not target.exists():
                target.symlink_to(path)
        for r in model.predict(str(root / "images"), stream=True, verbose=False, imgsz=imgsz, conf=0.25):
            rows = [
                f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}"
                for c, (x, y, w, h) in zip(r.boxes.cls.tolist(), r.boxes.xywhn.tolist(), strict=True)
            ]
            (root / "labels" / (Path(r.path).stem + ".txt")).write_text("\n".join(rows))
        train = "images"
    data = tmp / "data.yaml"
    import yaml

    data.write_text(yaml.safe_dump({"path": str(root), "train": train, "val": train, "names": names}))
    return data, source


def train_section(weights: str, folder: Path, imgsz: int, epochs: int, batch: int, tmp: Path) -> dict[str, Any]:
    import torch

    from pipelines.cycle.yolo_ops import train_yolo

    data, source = training_data(weights, folder, tmp, imgsz)
    if torch.cuda.is_available():
        from ultralytics.engine import trainer as trainer_module
        from ultralytics.utils import WEIGHTS_DIR

        if not (WEIGHTS_DIR / "yolo26n.pt").is_file():  # its AMP self-check downloads yolo26n.pt: offline here
            trainer_module.check_amp = lambda model: True
    peak_reset()
    seconds = train_yolo(
        data,
        weights,
        tmp / "trained.pt",
        tmp / "train" / "run",
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device="auto",
        workers=min(8, (os.cpu_count() or 2) // 2),
    )
    return {
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "labels": source,
        "seconds": round(seconds, 1),
        "torch_peak_mib": peak_mib(),
        "model_written": (tmp / "trained.pt").is_file(),
    }


# -- report --------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# Device check, {env.get('date')}",
        "",
        f"Machine: {env.get('gpu', 'no GPU')} ({env.get('gpu_memory_gib', '-')} GiB), {env.get('cpus')} CPU "
        f"cores; Python {env.get('python')}, torch {env.get('torch')}, ultralytics {env.get('ultralytics')}"
        f"{'; quick mode' if env.get('quick') else ''}; label-studio-sdk "
        f"{'installed' if env.get('label_studio_sdk') else 'absent (benchmarks/device_stub parses the config)'}"
        f"; seconds {report.get('seconds')}.",
        "",
    ]
    score = report.get("score", {})
    if "error" in score or not score:
        lines += [f"score: {score.get('error', 'not run')}", ""]
    else:
        lines += [
            f"## Score stage vs bare YOLO.predict ({score['images']} images, imgsz {score['imgsz']}, "
            f"batch {score['batch']})",
            "",
            "| precision | YOLO.predict img/s | score img/s | ratio | torch peak MiB |",
            "|---|---|---|---|---|",
        ]
        for name in ("fp16", "fp32"):
            if name in score:
                s = score[name]
                lines.append(
                    f"| {name} | {s['predict_img_s']} | {s['score_img_s']} | {s['ratio_score_vs_predict']} "
                    f"| {s['torch_peak_mib']} |"
                )
        lines.append("")
    serve = report.get("serve", {})
    if "error" in serve or not serve:
        lines += [f"serve: {serve.get('error', 'not run')}", ""]
    else:
        lines += ["## /predict under load (serve_load.py)", "", "```", serve.get("text", "").strip(), "```", ""]
    train = report.get("train", {})
    lines += [
        "## Training",
        "",
        f"```\n{json.dumps(train, indent=1)}\n```",
        "",
        f"Device peak memory used (nvidia-smi, all processes): {report.get('gpu_peak_used_mib')} MiB",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        raise SystemExit("usage: device_check.py OUTDIR")
    out_dir = Path(args[0]).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    from core.settings import configure_environment, load_params, resolve_path

    configure_environment()
    params = load_params()
    weights = os.environ.get("ALOD_WEIGHTS") or str(resolve_path(params, params["model"]["base_weights"]))
    folder = Path(os.environ.get("ALOD_IMAGES") or resolve_path(params, "../shared/data/coco128/images/train2017"))
    imgsz = int(os.environ.get("ALOD_IMGSZ") or (160 if QUICK else 640))
    started = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(), "weights": weights, "images": str(folder)}

    def save() -> None:
        report["seconds"] = round(time.perf_counter() - started, 1)
        (out_dir / "device_check.json").write_text(json.dumps(report, indent=1))
        (out_dir / "device_check.md").write_text(markdown(report))

    sections = [
        (
            "score",
            lambda tmp: score_section(
                weights, image_files(folder, 64 if QUICK else 512), imgsz, 8 if QUICK else 32, tmp
            ),
        ),
        (
            "serve",
            lambda tmp: serve_section(
                weights, image_files(folder, 1), imgsz, [4] if QUICK else [16, 64], 40 if QUICK else 640, out_dir
            ),
        ),
        ("train", lambda tmp: train_section(weights, folder, imgsz, 1 if QUICK else 2, 8 if QUICK else 32, tmp)),
    ]
    with GpuSampler() as sampler:
        for name, run in sections:
            print(f"== {name} ({time.perf_counter() - started:.0f} s)", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"alod-device-{name}-") as tmp:
                try:
                    report[name] = run(Path(tmp))
                except Exception as exc:  # noqa: BLE001 - recorded; the next section still runs
                    traceback.print_exc()
                    report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            if name == "serve" and (out_dir / "serve_load.txt").is_file():
                report[name]["text"] = (out_dir / "serve_load.txt").read_text()[-6000:]
            report["gpu_peak_used_mib"] = sampler.peak_mib
            save()
    print((out_dir / "device_check.md").read_text())
    failed = [name for name, _ in sections if "error" in report.get(name, {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
