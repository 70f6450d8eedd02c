"""Latency of the ML backend under load against bare detector inference, measured in one run.

    python benchmarks/serve_load.py                       # 200 requests, 16 clients, workers from the hardware
    python benchmarks/serve_load.py --imgsz 160 --workers 2 --no-batching
    python benchmarks/serve_load.py --clients 16,64 --compare-batching   # both modes, each client count
    python benchmarks/serve_load.py --requests 100 --clients 8 --source data-url
    python benchmarks/serve_load.py --auth --source http    # served closed, images over the guarded http path

Starts the backend with gunicorn on 127.0.0.1 (``--workers`` processes, default backend/sizing.py's
choice, each with ``clients / workers`` threads and CPU cores / workers torch threads; cross-request
batching as in params.yaml unless ``--no-batching`` / ``--batch-wait-ms``) and sends ``--requests`` single-task
``/predict`` requests from ``--clients`` concurrent clients (closed loop; a new connection per
request unless ``--keep-alive``), the way Label Studio's interactive pre-annotation does. The
task points at one image as Label Studio Local Storage does (``/data/local-files/?d=...``, read
from LOCAL_FILES_DOCUMENT_ROOT), or as a data: URL or an http URL (its own server on 127.0.0.1,
allow-listed as a storage host). ``--auth``: served closed, as deployed (basic auth on every
request); otherwise ``ALOD_INSECURE_NO_AUTH``. It prints p50 / p95 latency,
throughput and errors (failed requests and per-task errors: must be 0), and compares with bare
`Detector.detect` on the same image in the same run:

- bare: ``--workers`` processes with the same torch threads, each calling ``load_image`` +
  ``detect`` back to back (before and after the HTTP run, the machine is shared; the mean is used);
- **headline ratio**: HTTP p50 / the p50 the bare detector's throughput allows at the same
  concurrency (Little's law: clients x bare detect p50 / workers) -- target <= 1.15;
- throughput: bare read + detect images/s over HTTP requests/s (serving cost under saturation);
- single client (no queueing): HTTP p50 / bare detect p50, and / bare read + detect p50 (every
  inference on an image file reads and decodes it; the backend does too).

On a shared machine run it when nothing else is busy: the before/after bare runs show the noise.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.settings import configure_environment, load_params, resolve_path  # noqa: E402

DEFAULT_IMAGE = "../shared/data/coco128/images/train2017/000000000074.jpg"
CONFIG = """<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
<Label value="Vehicle" predicted_values="car,truck,bus"/><Label value="Person"/><Label value="Dog"/>
</RectangleLabels></View>"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torch_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


# -- bare detector --------------------------------------------------------------------------------


def _bare_process(image_path: str, calls: int, torch_n: int, barrier, out) -> None:  # noqa: ANN001
    configure_environment()
    import torch

    torch.set_num_threads(torch_n)
    from core.detector import Detector
    from core.images import load_image

    params = load_params()
    detector = Detector.from_params(params)
    conf = min(params["detector"]["conf_score"], params["detector"]["conf_predict"])
    for _ in range(5):
        detector.detect([load_image(image_path)], conf=conf)
    read_detect: list[float] = []
    detect_only: list[float] = []
    barrier.wait()
    for _ in range(calls):
        started = time.perf_counter()
        image = load_image(image_path)  # what the backend does too: read and decode the file
        loaded = time.perf_counter()
        detector.detect([image], conf=conf)
        done = time.perf_counter()
        read_detect.append(done - started)
        detect_only.append(done - loaded)
    out.put((read_detect, detect_only))


def bare(image_path: str, workers: int, calls: int, torch_n: int) -> tuple[list[float], list[float], float]:
    """(read + detect, detect only) latencies and the wall time of ``workers`` processes in parallel."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    per_worker = [calls // workers + (i < calls % workers) for i in range(workers)]
    procs = [
        ctx.Process(target=_bare_process, args=(image_path, per_worker[i], torch_n, barrier, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    parts = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    return [x for r, _ in parts for x in r], [x for _, d in parts for x in d], wall


# -- the backend over HTTP ------------------------------------------------------------------------


AUTH = ("bench", "serve-load-password")


def start_backend(
    workers: int,
    threads: int,
    document_root: Path,
    log: Path,
    settings: dict[str, str] | None = None,
    auth: bool = False,
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALOD__", "BASIC_AUTH", "MODEL_URI"))}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS=str(workers),
        THREADS=str(threads),
        ACCESS_LOG="",
        LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        ALOD__BACKEND__TORCH_THREADS=str(torch_threads(workers)),
        ALOD__BACKEND__MODEL_POLL_S="0",
        ALOD__BACKEND__TRAIN_DIR=str(log.parent / "train"),
        ALOD_METRICS_DIR=str(log.parent / "metrics"),
        ALOD__BACKEND__IMAGE_HOSTS_ALLOW='["127.0.0.1"]',  # --source http: the benchmark's own image server
        **(settings or {}),
    )
    if auth:
        env.update(BASIC_AUTH_USER=AUTH[0], BASIC_AUTH_PASS=AUTH[1])
    else:
        env["ALOD_INSECURE_NO_AUTH"] = "1"  # a benchmark on 127.0.0.1
    cmd = [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.app:create_app()"]
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(url: str, proc: subprocess.Popen, workers: int, timeout: float = 180) -> None:
    import requests

    deadline, loaded = time.monotonic() + timeout, 0
    while loaded < 4 * workers:  # health lands on any worker: ask until every one has answered "loaded"
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the backend did not start (exit {proc.poll()})")
        try:
            loaded = loaded + 1 if requests.get(f"{url}/health", timeout=2).json().get("model_loaded") else 0
        except requests.RequestException:
            pass
        time.sleep(0.2)


def http_load(
    url: str, image_ref: str, clients: int, requests_n: int, keep_alive: bool = False, auth: bool = False
) -> tuple[list[float], int, list[str]]:
    """Closed loop: each client sends its next request when the last answer is in.

    Without ``keep_alive`` every request opens its own connection, so the kernel spreads requests over
    the workers as they come; a kept-alive connection stays with the worker that accepted it, and
    16 long-lived connections split 10/6 make the p50 a measure of that split, not of serving cost.
    http.client rather than requests: on a 2-core machine the load generator's own CPU time would
    otherwise be a visible part of what is measured.
    """
    import http.client
    from urllib.parse import urlparse

    body = json.dumps({"tasks": [{"id": 1, "data": {"image": image_ref}}], "label_config": CONFIG}).encode()
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
    host, port = urlparse(url).hostname, urlparse(url).port
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    left = [requests_n]

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                started = time.perf_counter()
                try:
                    conn.request("POST", "/predict", body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    elapsed = time.perf_counter() - started
                    if not keep_alive:
                        conn.close()  # the next request connects anew
                    ok = response.status == 200
                    result = json.loads(payload)["results"][0] if ok else {"error": f"HTTP {response.status}"}
                except Exception as exc:  # noqa: BLE001 - counted as an error
                    elapsed, result = time.perf_counter() - started, {"error": repr(exc)}
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                with lock:
                    latencies.append(elapsed)
                    if "error" in result:
                        problems.append(str(result["error"]))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, len(problems), problems[:3]


def summary(name: str, latencies: list[float], wall: float | None = None) -> dict[str, float]:
    ms = [x * 1000 for x in latencies]
    row = {"n": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": statistics.mean(ms)}
    rate = ""
    if wall:
        row["per_s"] = len(ms) / wall
        rate = f"   {row['per_s']:6.1f} /s"
    print(f"{name:<40} n={row['n']:<4} p50 {row['p50_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms{rate}")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", default="16", help="concurrent clients; a list (16,64) runs each in turn")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: backend/sizing.py for this machine)")
    parser.add_argument("--imgsz", type=int, help="model.imgsz of the backend and the bare runs")
    parser.add_argument("--weights", help="model.base_weights of the backend and the bare runs")
    parser.add_argument("--no-batching", action="store_true", help="backend.batching: false (one pass per request)")
    parser.add_argument("--batch-wait-ms", type=float, help="backend.batch_wait_ms (default: params.yaml)")
    parser.add_argument("--compare-batching", action="store_true", help="run with and then without batching")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker (default: clients / workers)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="image file (relative to the repo root)")
    parser.add_argument(
        "--source",
        choices=("local-files", "data-url", "http"),
        default="local-files",
        help="how the task refers to the image",
    )
    parser.add_argument("--keep-alive", action="store_true", help="clients keep one connection each")
    parser.add_argument("--auth", action="store_true", help="basic auth on every request (the deployed default)")
    parser.add_argument("--single", type=int, default=30, help="requests of the single-client runs (0: skip)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    configure_environment()
    settings: dict[str, str] = {}
    if args.imgsz:
        settings["ALOD__MODEL__IMGSZ"] = str(args.imgsz)
    if args.weights:
        settings["ALOD__MODEL__BASE_WEIGHTS"] = str(Path(args.weights).resolve())
    if args.no_batching:
        settings["ALOD__BACKEND__BATCHING"] = "false"
    if args.batch_wait_ms is not None:
        settings["ALOD__BACKEND__BATCH_WAIT_MS"] = str(args.batch_wait_ms)
    os.environ.update(settings)  # the bare processes read the same settings
    params = load_params()
    if args.workers is None:
        from backend.sizing import plan

        args.workers = plan(environ={}).workers
    image = resolve_path(params, args.image)
    assert image is not None and image.is_file(), f"no image at {image}"
    root = image.parent.parent.parent.parent  # ../shared/data for the default COCO128 image
    tmp = Path(tempfile.mkdtemp(prefix="alod-serve-load-"))

    server = None
    if args.source == "local-files":
        ref = f"/data/local-files/?d={image.relative_to(root)}"
    elif args.source == "data-url":
        ref = "data:image/jpeg;base64," + base64.b64encode(image.read_bytes()).decode()
    else:
        import functools
        import http.server

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(image.parent))
        handler.log_message = lambda *a: None  # type: ignore[method-assign]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ref = f"http://127.0.0.1:{server.server_address[1]}/{image.name}"

    clients = [int(c) for c in str(args.clients).split(",")]
    modes = [True, False] if args.compare_batching else [not args.no_batching]
    threads = args.threads or max(1, max(clients) // args.workers)
    n_torch = torch_threads(args.workers)  # what each gunicorn worker gets, for every bare run too
    print(
        f"image {image.name}, imgsz {params['model']['imgsz']}, {args.workers} workers x {threads} threads x "
        f"{n_torch} torch threads, {args.clients} clients{' (keep-alive)' if args.keep_alive else ''}, "
        f"{args.requests} requests, source {args.source}{', basic auth' if args.auth else ''}, "
        f"{os.cpu_count()} CPU cores, batching "
        f"{'on and off' if len(modes) > 1 else 'on' if modes[0] else 'off'}"
    )
    results: dict[str, dict[str, float]] = {}

    def bare_run(key: str, label: str, workers: int, n: int) -> None:
        read_detect, detect_only, wall = bare(str(image), workers, n, n_torch)
        results[f"{key}_read"] = summary(f"{label}: read + detect", read_detect, wall)
        results[f"{key}_detect"] = summary(f"{label}: detect only", detect_only)

    def http_key(batching: bool, n: int) -> str:  # "http" alone for one configuration, as before
        if len(modes) == 1 and len(clients) == 1:
            return "http"
        return f"http_{'batching' if batching else 'no_batching'}_{n}"

    bare_run("bare", f"bare, {args.workers} processes (before)", args.workers, args.requests)
    errors, examples = 0, []
    for batching in modes:
        mode = {**settings, "ALOD__BACKEND__BATCHING": "true" if batching else "false"}
        proc, url = start_backend(args.workers, threads, root, tmp / "gunicorn.log", mode, args.auth)
        try:
            wait_ready(url, proc, args.workers)
            for n in clients:
                http_load(url, ref, n, 4 * n, auth=args.auth)  # warm-up: every thread, every worker
                started = time.perf_counter()
                latencies, bad, some = http_load(url, ref, n, args.requests, args.keep_alive, args.auth)
                errors, examples = errors + bad, examples + some
                label = f"HTTP /predict, {n} clients" + (
                    "" if len(modes) == 1 else f", batching {'on' if batching else 'off'}"
                )
                results[http_key(batching, n)] = summary(label, latencies, time.perf_counter() - started)
            if args.single and batching == modes[0]:
                single = http_load(url, ref, 1, args.single, args.keep_alive, args.auth)[0]
                results["http_single"] = summary("HTTP /predict, 1 client", single)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
    if server is not None:
        server.shutdown()
    bare_run("bare_after", f"bare, {args.workers} processes (after)", args.workers, args.requests)
    if args.single:
        bare_run("bare_single", "bare, 1 process", 1, args.single)

    def p50(key: str) -> float:
        return results[key]["p50_ms"]

    detect = (p50("bare_detect") + p50("bare_after_detect")) / 2
    bare_rate = (results["bare_read"]["per_s"] + results["bare_after_read"]["per_s"]) / 2
    print(f"errors: {errors}" + (f"  e.g. {examples[:3]}" if examples else ""))
    ratios: dict[str, float] = {}
    runs = []
    for batching in modes:
        for n in clients:
            key = http_key(batching, n)
            allowed = n * detect / args.workers  # Little's law at the bare detector's service time
            row = {
                "clients": n,
                "batching": batching,
                "p50_ms": p50(key),
                "p95_ms": results[key]["p95_ms"],
                "per_s": results[key]["per_s"],
                "bare_p50_at_concurrency_ms": allowed,
                "p50_vs_bare_at_same_concurrency": p50(key) / allowed,
                "bare_throughput_vs_http": bare_rate / results[key]["per_s"],
            }
            runs.append(row)
            print(
                f"p50 ratio, {n} clients{'' if len(modes) == 1 else f', batching {batching}'}: HTTP "
                f"{p50(key):.1f} ms / bare-detector p50 at that concurrency {allowed:.1f} ms = "
                f"{row['p50_vs_bare_at_same_concurrency']:.3f}  (target <= 1.15); throughput: bare read + "
                f"detect / HTTP = {row['bare_throughput_vs_http']:.3f}"
            )
    if len(runs) == 1:
        ratios = {k: runs[0][k] for k in ("p50_vs_bare_at_same_concurrency", "bare_throughput_vs_http")}
    if args.single:
        ratios["single_vs_detect"] = p50("http_single") / p50("bare_single_detect")
        ratios["single_vs_read_detect"] = p50("http_single") / p50("bare_single_read")
        print(
            f"p50 ratio, 1 client: HTTP / bare detect {ratios['single_vs_detect']:.3f}, "
            f"HTTP / bare read + detect {ratios['single_vs_read_detect']:.3f}"
        )
    output = {
        "results": results,
        "ratios": ratios,
        "runs": runs,
        "errors": errors,
        "imgsz": params["model"]["imgsz"],
        "workers": args.workers,
        "threads": threads,
        "torch_threads": n_torch,
        "cpus": os.cpu_count(),
        "auth": args.auth,
        "source": args.source,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=1))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
