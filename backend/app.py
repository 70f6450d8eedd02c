"""The Label Studio ML backend as a Flask application (served by gunicorn: see gunicorn_conf.py).

    gunicorn -c backend/gunicorn_conf.py 'backend.app:create_app()'

Endpoints (Label Studio 1.23 calls all but the last two): ``GET /health``, ``POST /setup``,
``POST /predict``, ``POST /webhook``, ``GET /versions``, ``POST /train`` (the pre-webhook
training call), ``GET /metrics`` (Prometheus) and ``GET /training`` (state of the last run).
With BASIC_AUTH_USER / BASIC_AUTH_PASS set every endpoint but ``/health`` needs them.
Nothing heavy happens at import or in ``create_app``: the model loads on first use per worker
(gunicorn workers start loading it in the background, see gunicorn_conf.py).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from backend.metrics import Metrics
from backend.project_sync import ProjectSync, project_id
from backend.training import AnnotationCounter, TrainingRunner
from core.backend_settings import BackendSettings
from core.fetch import ImageFetcher
from core.labels import LabelConfigError, check_label_config
from core.predictor import Predictor

log = logging.getLogger("alod.backend")

ANNOTATION_EVENTS = (
    "ANNOTATION_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_DELETED",
    "ANNOTATIONS_DELETED",
)
OPEN_PATHS = ("/", "/health")
SETUP_WAIT_S = 2.0  # Label Studio gives /setup 3 s


class Backend:
    """Everything one worker holds: the model store, the image fetcher, the predictor, the runner."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.predictor = Predictor.from_settings(settings, metrics=self.metrics)
        self.store, self.fetcher = self.predictor.store, self.predictor.fetcher
        self.runner = TrainingRunner(settings.train_command, settings.root, settings.train_dir, self.store.refresh)
        self.annotations = AnnotationCounter(settings.train_dir / "annotation-events", settings.train_after_annotations)
        self.setup_credentials: tuple[str | None, str | None] = (None, None)  # from Label Studio's last /setup
        ls = settings.params["label_studio"]
        self.sync = ProjectSync(bool(ls["set_model_version"]), bool(ls["live_queue"]))

    def label_studio_credentials(self) -> tuple[str | None, str | None]:
        """(url, key) that belong together: the environment's pair, else the pair /setup sent."""
        if self.settings.label_studio_url and self.settings.label_studio_api_key:
            return self.settings.label_studio_url, self.settings.label_studio_api_key
        url, token = self.setup_credentials
        return (url.rstrip("/"), token) if url and token else (None, None)

    def on_worker_start(self) -> None:
        if self.settings.warmup:
            self.store.warm_up()
        self.store.start_polling()

    def fetcher_for_request(self) -> ImageFetcher:
        return self.fetcher.with_credentials(*self.label_studio_credentials())

    def version_within(self, seconds: float) -> str | None:
        """The model version, resolving MODEL_URI again, but answering within ``seconds``."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                self.store.refresh()
                box["version"] = self.store.reported_version()
            except Exception as exc:  # noqa: BLE001
                box["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(seconds)
        if "error" in box:
            raise box["error"]
        if "version" in box:
            return box["version"]
        return self.store.known_version  # still resolving: answer with what is known


def create_app(settings: BackendSettings | None = None) -> Flask:
    if not logging.getLogger().handlers:  # under gunicorn: the app's own messages next to gunicorn's
        logging.basicConfig(
            level=os.environ.get("LOG_LEVEL", "info").upper(),
            format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        )
    settings = settings or BackendSettings.load()
    if settings.basic_auth is None and not settings.insecure_no_auth:
        raise RuntimeError(
            "the backend needs BASIC_AUTH_USER and BASIC_AUTH_PASS (give the same pair to Label Studio when connecting "
            "the model); on a trusted network only, ALOD_INSECURE_NO_AUTH=1 serves without authentication"
        )
    if settings.basic_auth is None:
        log.warning("serving WITHOUT authentication (insecure_no_auth): anyone who reaches this port can use it")
    backend = Backend(settings)
    app = Flask("alod.backend")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["alod"] = backend

    @app.before_request
    def authenticate() -> Any:
        g.started = time.perf_counter()
        if settings.basic_auth is None or request.path in OPEN_PATHS:
            return None
        auth = request.authorization
        user, password = settings.basic_auth
        if (
            auth is None
            or auth.type != "basic"
            or not hmac.compare_digest((auth.username or "").encode(), user.encode())
            or not hmac.compare_digest((auth.password or "").encode(), password.encode())
        ):
            response = jsonify({"error": "authentication required: wrong or missing HTTP basic auth credentials"})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="alod"'
            return response
        return None

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "other"
        backend.metrics.inc("alod_requests_total", {"endpoint": endpoint, "code": response.status_code})
        if "started" in g:
            backend.metrics.observe("alod_request_seconds", time.perf_counter() - g.started, {"endpoint": endpoint})
        return response

    @app.errorhandler(LabelConfigError)
    def bad_config(exc: LabelConfigError) -> Any:
        return jsonify({"error": str(exc)}), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify({"error": exc.description or exc.name}), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return jsonify({"error": "internal error (see the backend's log)"}), 500  # no internals to the caller

    @app.get("/")
    @app.get("/health")
    def health() -> Any:
        return jsonify(
            {
                "status": "UP",
                "model_class": "alod.YOLO",
                "model_version": backend.store.known_version,
                "model_loaded": backend.store.loaded,
            }
        )

    @app.post("/setup")
    def setup() -> Any:
        body = _json_object()
        schema = body.get("schema")
        if schema:
            check_label_config(schema)
        if body.get("hostname") or body.get("access_token"):
            backend.setup_credentials = (body.get("hostname") or None, body.get("access_token") or None)
        try:
            version = backend.version_within(SETUP_WAIT_S)
        except Exception as exc:  # noqa: BLE001
            return jsonify({"error": f"model not available: {exc}"}), 503
        return jsonify({"model_version": version, "status": "ok"})

    @app.post("/predict")
    def predict() -> Any:
        body = _json_object()
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            return jsonify({"error": "the request needs 'tasks': a list of Label Studio tasks"}), 400
        if len(tasks) > settings.max_batch_tasks:
            message = (
                f"{len(tasks)} tasks in one request exceeds backend.max_batch_tasks={settings.max_batch_tasks}; "
                "Label Studio waits at most 100 s for /predict: write predictions for large pools with "
                "`alod push-predictions --project ID`"
            )
            return jsonify({"error": message}), 413
        label_config = body.get("label_config")
        if not isinstance(label_config, str) or not label_config.strip():
            return jsonify({"error": "the request needs 'label_config' (the project's labeling config)"}), 400
        try:
            backend.store.model()
        except Exception as exc:  # noqa: BLE001 - a missing or broken model is the server's problem: 503
            log.exception("model not available")
            return jsonify({"error": f"model not available: {type(exc).__name__}: {exc}"}), 503
        try:
            result = backend.predictor.predict(tasks, label_config, backend.fetcher_for_request())
        except LabelConfigError as exc:
            return jsonify({"error": str(exc)}), 400
        seconds = " ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
        log.info("predicted %d tasks (%d errors) with %s: %s", len(tasks), result.errors, result.model_version, seconds)
        if len(result.results) > result.errors:
            project = project_id(body.get("project"))
            backend.sync.update(*backend.label_studio_credentials(), project, result.model_version)
        backend.metrics.set_gauge("alod_model_info", 1, {"model_version": result.model_version})
        return jsonify({"results": result.results, "model_version": result.model_version})

    @app.post("/webhook")
    def webhook() -> Any:
        body = _json_object()
        action = body.get("action")
        if not isinstance(action, str) or not action:
            return jsonify({"error": "the webhook payload has no 'action'"}), 400
        known = action in ANNOTATION_EVENTS or action in ("START_TRAINING", "PROJECT_UPDATED")
        backend.metrics.inc("alod_webhooks_total", {"action": action if known else "other"})
        if action == "START_TRAINING":
            project = body.get("project")
            project_id = project.get("id", "?") if isinstance(project, dict) else "?"
            return _start_training(f"START_TRAINING project {project_id}")
        if action in ANNOTATION_EVENTS:
            if backend.annotations.add():
                return _start_training(f"{settings.train_after_annotations} annotation events")
            return jsonify({"status": "ok", "action": action})
        return jsonify({"status": "ignored", "action": action})

    @app.post("/train")
    def train() -> Any:
        _json_object()
        return _start_training("POST /train")

    @app.get("/training")
    def training_state() -> Any:
        return jsonify(backend.runner.state())

    @app.get("/versions")
    def versions() -> Any:
        try:
            return jsonify({"versions": backend.store.versions(), "model_version": backend.store.reported_version()})
        except Exception as exc:  # noqa: BLE001
            return jsonify({"error": f"cannot list model versions: {exc}"}), 503

    @app.get("/metrics")
    def metrics() -> Any:
        return Response(backend.metrics.render(), content_type=CONTENT_TYPE_LATEST)

    def _start_training(reason: str) -> Any:
        state = backend.runner.start(reason)
        backend.metrics.inc("alod_training_runs_total", {"outcome": state["status"]})
        if state["status"] == "failed to start":
            return jsonify({"error": f"training command failed to start: {state.get('error')}", **state}), 500
        return jsonify(state), 201 if state["status"] == "started" else 200

    return app


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object; malformed JSON or another type is a 400 with a message."""
    from werkzeug.exceptions import BadRequest

    try:
        body = request.get_json(force=True, silent=True, cache=True)
    except RecursionError:  # nested deeper than the parser goes: malformed for our purposes
        raise BadRequest("the request body is nested too deeply") from None
    if body is None:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        raise BadRequest("the request body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, got {type(body).__name__}")
    return body
