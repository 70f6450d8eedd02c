"""Real servers for the backend's end-to-end tests: Label Studio 1.23, the backend under gunicorn, a file server.

Label Studio runs from its own virtualenv, ``.venv-ls/`` (git-ignored), created here on first use
(``python -m venv`` + ``pip install label-studio==1.23.2`` and moto's S3 server for the cloud
storage test: ~1.5 minutes, ~1.2 GB, once). Its first start runs the database migrations
(~40-75 s); the migrated data folder is kept as a template in ``.venv-ls/template-<version>/`` and
copied into a temporary LABEL_STUDIO_BASE_DATA_DIR per session, so later sessions start Label
Studio in ~6 s. Everything listens on 127.0.0.1 on free ports and is stopped at the end.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from core.settings import REPO_ROOT

LS_VERSION = "1.23.2"
MOTO_VERSION = "5.2.5"  # a local S3 (moto_server) for Label Studio's cloud storage, in the same venv
LS_VENV = REPO_ROOT / ".venv-ls"
LS_USER = "admin@example.com"
LS_PASSWORD = "alod-test-password"
LS_TOKEN = "a1cd0e5bd00d5a0f7c1b0c7d5e5f0a1b2c3d4e5f"
COCO = "coco128/images/train2017"

RECT_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="Vehicle" predicted_values="car,truck,bus"/>
    <Label value="Person"/>
    <Label value="DOG"/>
    <Label value="Unicorn"/>
  </RectangleLabels>
</View>"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, ok=lambda r: r.ok) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            response = requests.get(url, timeout=2)
            if ok(response):
                return response
            last = response.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s (last: {last})")


def stop(proc: subprocess.Popen, timeout: float = 15, sig: int = signal.SIGTERM) -> None:
    """Stop a server this file started (its own process group) and wait for it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# -- Label Studio ----------------------------------------------------------------------------


def ensure_label_studio_venv() -> Path:
    exe = LS_VENV / "bin" / "label-studio"
    LS_VENV.mkdir(exist_ok=True)  # `python -m venv` fills an existing folder
    with open(LS_VENV / ".alod-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        python = LS_VENV / "bin" / "python"
        if exe.exists() and _installed(python) == (LS_VERSION, MOTO_VERSION):
            return exe
        started = time.monotonic()
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(LS_VENV)], check=True)
        _pip(python, f"label-studio=={LS_VERSION}")
        # moto must not move any of Label Studio's pins: install it constrained to what is there
        frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
        constraints = LS_VENV / "ls-constraints.txt"
        constraints.write_text(frozen)
        _pip(python, "-c", str(constraints), f"moto[server]=={MOTO_VERSION}")
        print(f"\ninstalled label-studio {LS_VERSION} (+ moto) into {LS_VENV} in {time.monotonic() - started:.0f} s")
    return exe


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"pip install {' '.join(args)} into {LS_VENV} failed:\n{result.stderr[-3000:]}")


def _installed(python: Path) -> tuple[str | None, str | None]:
    if not python.exists():
        return None, None
    code = (
        "import importlib.metadata as m\n"
        "def v(n):\n    try:\n        return m.version(n)\n    except m.PackageNotFoundError:\n        return ''\n"
        "print(v('label-studio'), v('moto'))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    parts = result.stdout.split() if result.returncode == 0 else []
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0] if parts else None, None)


def _ls_env(data_dir: Path, document_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_", "ALOD"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=LS_USER,
        LABEL_STUDIO_PASSWORD=LS_PASSWORD,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_USER_TOKEN=LS_TOKEN,
        ML_BLOCK_LOCAL_IP="false",
        SSRF_PROTECTION_ENABLED="false",
        LOCAL_FILES_SERVING_ENABLED="true",
        LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        HOME=str(data_dir),  # anything Label Studio writes under ~ stays in the temp folder
    )
    return env


def _start_ls(exe: Path, data_dir: Path, document_root: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "-p", str(port)]
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            env=_ls_env(data_dir, document_root),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=data_dir,
        )


def _ls_template(exe: Path, document_root: Path) -> Path:
    """A migrated Label Studio data folder with the test user, built once per Label Studio version."""
    template = LS_VENV / f"template-{LS_VERSION}"
    with open(LS_VENV / ".alod-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (template / "label_studio.sqlite3").exists():
            return template
        building = Path(tempfile.mkdtemp(prefix="template-", dir=LS_VENV))
        port = free_port()
        proc = _start_ls(exe, building, document_root, port, building.parent / "template-build.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 300, proc)
            wait_http(
                f"http://127.0.0.1:{port}/api/projects",
                60,
                proc,
                ok=lambda r: requests.get(r.url, headers={"Authorization": f"Token {LS_TOKEN}"}).ok,
            )
        finally:
            stop(proc)
        building.rename(template)
        return template


@dataclass
class LabelStudioServer:
    url: str
    token: str
    document_root: Path
    data_dir: Path

    def client(self):  # noqa: ANN201 - label_studio_sdk.LabelStudio
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token, timeout=120)

    def upload(self, project: int, path: Path) -> None:
        with open(path, "rb") as f:
            r = requests.post(
                f"{self.url}/api/projects/{project}/import",
                files={"file": (path.name, f)},
                headers={"Authorization": f"Token {self.token}"},
                timeout=60,
            )
        r.raise_for_status()


@pytest.fixture(scope="session")
def label_studio(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    exe = ensure_label_studio_venv()
    document_root = (shared / "data").resolve()
    template = _ls_template(exe, document_root)
    data_dir = tmp_path_factory.mktemp("label-studio")
    shutil.copytree(template, data_dir, dirs_exist_ok=True)
    port = free_port()
    log = data_dir / "label-studio.log"
    proc = _start_ls(exe, data_dir, document_root, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", 180, proc)
        yield LabelStudioServer(url, LS_TOKEN, document_root, data_dir)
    finally:
        stop(proc)


# -- the backend under gunicorn ----------------------------------------------------------------


@dataclass
class BackendServer:
    url: str
    proc: subprocess.Popen
    log: Path
    train_dir: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_backend(tmp: Path, extra_env: dict[str, str], *, wait_model: bool = True) -> BackendServer:
    port = free_port()
    train_dir = tmp / "train"
    foreign = ("ALOD__", "ALOD_INSECURE", "BASIC_AUTH", "LABEL_STUDIO", "MODEL_URI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS="1",
        THREADS="8",
        ALOD_METRICS_DIR=str(tmp / "metrics"),
        ALOD__MODEL__IMGSZ="320",
        ALOD__BACKEND__TRAIN_DIR=str(train_dir),
        ALOD__BACKEND__MODEL_POLL_S="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env)
    if "BASIC_AUTH_USER" not in env:  # the tests' own backends on 127.0.0.1; tests/security checks the default
        env["ALOD_INSECURE_NO_AUTH"] = "1"
    log = tmp / "gunicorn.log"
    cmd = [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.app:create_app()"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if wait_model:
            wait_http(f"{url}/health", 120, proc, ok=lambda r: r.ok and r.json().get("model_loaded"))
        else:
            wait_http(f"{url}/health", 60, proc)
    except Exception:
        stop(proc)
        raise RuntimeError(f"the backend did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
    return BackendServer(url, proc, log, train_dir)


@pytest.fixture(scope="session")
def backend_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``start(env, wait_model=True) -> BackendServer``: more gunicorn backends, stopped at the end."""
    started: list[BackendServer] = []

    def start(env: dict[str, str], wait_model: bool = True) -> BackendServer:
        started.append(start_backend(tmp_path_factory.mktemp("backend"), env, wait_model=wait_model))
        return started[-1]

    yield start
    for server in started:
        stop(server.proc, sig=signal.SIGQUIT)  # gunicorn: quick shutdown, no waiting for keep-alive clients


TRAIN_SCRIPT = (
    "import os, pathlib, time; "
    "p = pathlib.Path(os.environ['ALOD_TEST_RUNS']); "
    "p.open('a').write(os.environ.get('ALOD_TRAIN_REASON', '') + '\\n'); "
    "time.sleep(float(os.environ.get('ALOD_TEST_TRAIN_S', '4')))"
)


@pytest.fixture(scope="session")
def backend_server(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendServer]:
    tmp = tmp_path_factory.mktemp("backend")
    server = start_backend(
        tmp,
        {
            "LABEL_STUDIO_URL": label_studio.url,
            "LABEL_STUDIO_API_KEY": label_studio.token,
            "ALOD__BACKEND__TRAIN_COMMAND": f'{sys.executable} -c "{TRAIN_SCRIPT}"',
            "ALOD_TEST_RUNS": str(tmp / "runs.txt"),
            "ALOD__BACKEND__IMAGE_MAX_MB": "2",
            "ALOD__BACKEND__IMAGE_HOSTS_ALLOW": '["127.0.0.1"]',  # the tests' file server, as a storage host
            "ALOD__BACKEND__IMAGE_MAX_PIXELS": "20000000",
            "ALOD__BACKEND__IMAGE_TIMEOUT_S": "5",
        },
    )
    try:
        yield server
    finally:
        stop(server.proc, sig=signal.SIGQUIT)


# -- a plain HTTP file server (stands in for any http(s) image host, presigned URLs included) ----------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@dataclass
class FileServer:
    url: str
    root: Path


@pytest.fixture(scope="session")
def file_server(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("files")
    for name in ("000000000094.jpg", "000000000071.jpg"):
        shutil.copy(shared / "data" / COCO / name, root / name)
    (root / "notes.jpg").write_text("this is not an image\n" * 20)
    (root / "big.jpg").write_bytes(os.urandom(3 << 20))  # 3 MiB > the servers' 2 MiB limit
    _bomb_png(root / "bomb.png", 6000, 6000)  # 36 MP > 20 MP limit, ~100 KB on disk
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    prefix: str


@pytest.fixture(scope="session")
def s3_server(
    label_studio: LabelStudioServer, coco_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 holding one COCO image under s3://alod/images/."""
    tmp = tmp_path_factory.mktemp("s3")
    port = free_port()
    with open(tmp / "moto.log", "ab") as out:
        proc = subprocess.Popen(
            [str(LS_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp,
        )
    server = S3Server(f"http://127.0.0.1:{port}", "alod", "images")
    try:
        wait_http(f"{server.endpoint}/moto-api/", 60, proc)
        upload = (
            "import boto3, sys\n"
            "s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test',"
            " aws_secret_access_key='test', region_name='us-east-1')\n"
            "s3.create_bucket(Bucket='alod')\n"
            "s3.upload_file(sys.argv[2], 'alod', 'images/' + sys.argv[2].rsplit('/', 1)[-1])\n"
        )
        subprocess.run(
            [str(LS_VENV / "bin" / "python"), "-c", upload, server.endpoint, str(coco_dir / S3_IMAGE)],
            check=True,
            timeout=60,
        )
        yield server
    finally:
        stop(proc)


S3_IMAGE = "000000000165.jpg"


def _bomb_png(path: Path, width: int, height: int) -> None:
    from PIL import Image

    Image.new("L", (width, height)).save(path, optimize=True)


def data_url(path: Path, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="session")
def rect_config() -> str:
    """A RectangleLabels config exercising every mapping rule against a COCO model."""
    return RECT_CONFIG


@pytest.fixture(scope="session")
def coco_dir(shared: Path) -> Path:
    return shared / "data" / COCO


@pytest.fixture(scope="session")
def to_data_url():  # noqa: ANN201
    return data_url


def bccd_project(
    label_studio: LabelStudioServer, shared: Path, title: str, label_config: str, pool: int, test: int
) -> tuple[Any, int, list[dict], dict[str, int]]:
    """A Label Studio project of the first ``pool`` BCCD train and ``test`` test frames (local files,
    ``split`` in the task data, no annotations). Returns (client, project id, the tasks with their
    ground truth as an annotation, frame id -> task id)."""
    from pipelines.datasets import import_dataset
    from pipelines.datasets.readers.labelstudio import to_labelstudio_tasks

    config = {"format": "voc", "root": str(shared / "data/bccd/BCCD"), "labels": ["RBC", "WBC", "Platelets"],
              "degenerate_boxes": "drop"}  # fmt: skip
    bccd, _ = import_dataset("bccd", config, REPO_ROOT, verify="header")
    split = bccd.frames["split"]
    frames = pd.concat([bccd.frames[split == "train"].head(pool), bccd.frames[split == "test"].head(test)])
    small = type(bccd)(frames, bccd.boxes_of(frames["frame_id"]), bccd.labels)
    tasks = to_labelstudio_tasks(small, REPO_ROOT, document_root=label_studio.document_root)
    ls = label_studio.client()
    project = ls.projects.create(title=title, label_config=label_config)
    ls.projects.import_tasks(project.id, request=[{"data": t["data"]} for t in tasks])
    task_of = {t.data["frame_id"]: t.id for t in ls.tasks.list(project=project.id)}
    return ls, project.id, tasks, task_of
