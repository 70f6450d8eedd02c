"""The GPU numbers in one run: scoring vs bare YOLO.predict, /predict under load, a short training run.

    benchmarks/device_check.sh OUTDIR                    # on a machine with one NVIDIA GPU (under 7 minutes)
    DEVICE_CHECK_QUICK=1 benchmarks/device_check.sh OUTDIR   # tiny CPU run that proves the script works

Sections (each one's failure is recorded and the next one still runs; the report is rewritten after
every section, so a run cut short keeps what it measured):

1. ``score``: the `score` stage's `score_frames` against bare ``YOLO.predict`` on the same image files,
   batch 32, fp16 and fp32: images/s of each and their ratio (best of two interleaved runs), with the
   divergence maps of params.yaml (``detector.divergence_*``) and without; as many images (up to 512)
   as fit the section's share of the budget; a torch.profiler table of one batch per precision
   (OUTDIR/score_profile_fp16.txt, _fp32.txt).
2. ``serve``: `benchmarks/serve_load.py` with 16 and 64 concurrent clients, with and without
   cross-request batching: HTTP p50 / p95, requests/s, ratio to bare inference at that concurrency.
3. ``train``: `pipelines.cycle.yolo_ops.train_yolo` for ``epochs`` epochs on the image folder (its
   YOLO labels, or the model's own predictions written as labels when it has none).
4. GPU memory: torch's peak allocation per in-process section, and the device's peak used memory
   (nvidia-smi sampled every 0.5 s, all processes: the gunicorn workers too).

Inputs (environment): ALOD_WEIGHTS (a YOLO .pt, default model.base_weights), ALOD_IMAGES (a folder
of images, default ../shared/data/coco128/images/train2017), ALOD_IMGSZ (default 640; 160 quick),
DEVICE_CHECK_BUDGET_S (default 400: the seconds the sections share; serve is stopped, gunicorn
included, when it would leave training less than 100 s).
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
import signal
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
# seconds the three sections may take together (the script's budget is 8 minutes: this leaves a margin for
# start-up and for a section that overruns its share); score gets SCORE_SHARE of it, serve what remains
# but TRAIN_RESERVE_S, so that training is always reached
BUDGET_S = float(os.environ.get("DEVICE_CHECK_BUDGET_S") or 400)
SCORE_SHARE = 0.3
TRAIN_RESERVE_S = 100.0
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


def score_section(
    weights: str, images: list[str], imgsz: int, batch: int, tmp: Path, out_dir: Path, budget_s: float
) -> dict[str, Any]:
    """Both precisions on a GPU (fp32 only on a CPU), the number of images sized to ``budget_s``."""
    import torch

    from core.divergence import divergence_setting
    from core.settings import load_params

    divergence = divergence_setting(load_params().get("detector"))
    out: dict[str, Any] = {"imgsz": imgsz, "batch": batch, "divergence": divergence}
    precisions = (True, False) if torch.cuda.is_available() else (False,)
    started = time.perf_counter()
    for k, half in enumerate(precisions):
        left = budget_s - (time.perf_counter() - started)
        share = left / (len(precisions) - k)
        out["fp16" if half else "fp32"] = score_vs_predict(
            weights, images, imgsz, batch, half, divergence, tmp, out_dir, share
        )
    out["images"] = max(v["images"] for k, v in out.items() if k in ("fp16", "fp32"))
    return out


def score_vs_predict(
    weights: str,
    images: list[str],
    imgsz: int,
    batch: int,
    half: bool,
    divergence: dict[str, Any],
    tmp: Path,
    out_dir: Path,
    budget_s: float,
) -> dict[str, Any]:
    """Best-of-two images/s of `score_frames` (with the configured divergence maps, and without) and of
    ``YOLO.predict`` at one precision, on as many of ``images`` as fit ``budget_s`` (whole batches)."""
    from benchmarks.score_throughput import frames_of
    from core.detector import Detector
    from core.settings import disable_ultralytics_integrations
    from pipelines.scoring.score import score_frames

    disable_ultralytics_integrations()
    from ultralytics import YOLO

    peak_reset()
    name = "fp16" if half else "fp32"
    model = YOLO(weights)
    detector = Detector(weights, imgsz=imgsz, batch=batch, conf=0.05, half=half)

    def predict(paths: list[str]) -> float:
        source = tmp / f"images-{len(paths)}.txt"  # a .txt source streams batches of files, as the pool pass reads
        source.write_text("\n".join(paths) + "\n")
        started = time.perf_counter()
        for _ in model.predict(str(source), stream=True, verbose=False, imgsz=imgsz, batch=batch, conf=0.05, half=half):
            pass
        return time.perf_counter() - started

    def score(paths: list[str], run: str, radius: Any) -> float:
        started = time.perf_counter()
        score_frames(
            frames_of(paths),
            detector,
            tmp / f"{name}-{run}",
            conf=0.05,
            divergence_radius=radius,
            chunk_size=64,
            progress=False,
        )
        return time.perf_counter() - started

    started = time.perf_counter()
    warm = images[: 2 * batch]  # first calls: cuDNN plans, allocator; also the estimate of a pass's cost
    predict(warm)
    score(warm, "warm", divergence)
    per_image = (predict(warm) + score(warm, "warm2", divergence) + score(warm, "warm3", None)) / len(warm)
    left = budget_s - (time.perf_counter() - started)
    fits = int(left * 0.8 / (2 * max(per_image, 1e-4)))  # two rounds of the three passes
    n = max(batch, min(len(images), fits // batch * batch))
    chosen = images[:n]
    p_s, s_s, bare_s = [], [], []
    for r in range(2):  # interleaved: a slow moment of the machine hits all of them
        p_s.append(predict(chosen))
        s_s.append(score(chosen, str(r), divergence))
        bare_s.append(score(chosen, f"none{r}", None))
    result = {
        "images": n,
        "predict_img_s": round(n / min(p_s), 1),
        "score_img_s": round(n / min(s_s), 1),
        "ratio_score_vs_predict": round(min(p_s) / min(s_s), 3),
        "score_no_divergence_img_s": round(n / min(bare_s), 1),
        "ratio_no_divergence": round(min(p_s) / min(bare_s), 3),
        "seconds": {
            "predict": [round(x, 2) for x in p_s],
            "score": [round(x, 2) for x in s_s],
            "score_no_divergence": [round(x, 2) for x in bare_s],
        },
        "torch_peak_mib": peak_mib(),
    }
    result["profile"] = profile_detect(detector, chosen[:batch], divergence, out_dir / f"score_profile_{name}.txt")
    return result


def profile_detect(detector: Any, paths: list[str], divergence: dict[str, Any], path: Path) -> str:
    """torch.profiler table of one `Detector.detect` batch (where a GPU's time goes), written to ``path``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from core.images import load_image

    images = [load_image(p) for p in paths]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        detector.detect(images, conf=0.05, divergence_radius=divergence)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    path.write_text(prof.key_averages().table(sort_by=key, row_limit=25))
    return path.name


# -- 2. /predict under load ----------------------------------------------------------------------------


def serve_section(
    weights: str, images: list[str], imgsz: int, clients: list[int], requests_n: int, out_dir: Path, budget_s: float
) -> dict[str, Any]:
    """`benchmarks/serve_load.py` in its own process group, stopped (gunicorn too) after ``budget_s``."""
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
        "20",
        "--json",
        str(result_file),
    ]
    with open(out_dir / "serve_load.txt", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=max(30.0, budget_s))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: serve_load.py and the gunicorn it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = None
    text = (out_dir / "serve_load.txt").read_text()
    if not result_file.is_file():
        why = f"stopped after its {budget_s:.0f} s" if code is None else f"exited {code}"
        raise RuntimeError(f"serve_load.py {why}: {text[-2000:]}")
    out = json.loads(result_file.read_text())
    out["exit_code"] = code
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
            f"## Score stage vs bare YOLO.predict (up to {score['images']} images, imgsz {score['imgsz']}, "
            f"batch {score['batch']}, divergence {score.get('divergence')})",
            "",
            "| precision | images | YOLO.predict img/s | score img/s | ratio | score without divergence img/s "
            "| ratio | torch peak MiB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in ("fp16", "fp32"):
            if name in score:
                s = score[name]
                lines.append(
                    f"| {name} | {s.get('images', score['images'])} | {s['predict_img_s']} | {s['score_img_s']} "
                    f"| {s['ratio_score_vs_predict']} | {s.get('score_no_divergence_img_s', '-')} "
                    f"| {s.get('ratio_no_divergence', '-')} | {s['torch_peak_mib']} |"
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

    def left() -> float:
        return BUDGET_S - (time.perf_counter() - started)

    sections = [
        (
            "score",
            lambda tmp: score_section(
                weights,
                image_files(folder, 64 if QUICK else 512),
                imgsz,
                8 if QUICK else 32,
                tmp,
                out_dir,
                SCORE_SHARE * BUDGET_S,
            ),
        ),
        (
            "serve",
            lambda tmp: serve_section(
                weights,
                image_files(folder, 1),
                imgsz,
                [4] if QUICK else [16, 64],
                40 if QUICK else 320,
                out_dir,
                left() - TRAIN_RESERVE_S,
            ),
        ),
        (
            "train",
            lambda tmp: train_section(
                weights, folder, imgsz, 1 if QUICK or left() < 1.5 * TRAIN_RESERVE_S else 2, 8 if QUICK else 32, tmp
            ),
        ),
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
