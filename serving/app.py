"""The scoring service: ``uvicorn serving.app:app`` (the factory is :func:`create_app`).

Building the app reads nothing and starts nothing. The lifespan reads the
configuration and environment, starts the prediction log, and starts a
background task that resolves the serving alias, loads the version (verified
by its artifact hash) and keeps polling for alias moves. ``/ready`` turns
true once a model is warm and false again while draining on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import registry
from credit_risk.config import ProjectConfig, Settings, load_project_config
from serving import errors, prediction_log
from serving.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NoModelError,
    NotFoundError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    error_responses,
    json_response,
    problem,
    problems_from_pydantic,
)
from serving.metrics import MetricsMiddleware, ServiceMetrics
from serving.middleware import BodyLimitMiddleware, ConfiguredCORS
from serving.monitoring import router as monitoring_router
from serving.predict import score_records
from serving.requests import RequestParser, load_json
from serving.schemas import (
    AdminActionOut,
    BatchResponse,
    Health,
    ModelInfo,
    PredictionResponse,
    PromoteRequest,
    Readiness,
    RegistryOut,
    ReloadOut,
    RollbackRequest,
)
from serving.state import Attempt, ModelHolder, Served

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_JSON_TYPES = ("application/json",)


@dataclass
class Runtime:
    """Everything the routes need, created in the lifespan."""

    config: ProjectConfig
    settings: Settings
    holder: ModelHolder
    metrics: ServiceMetrics
    writer: prediction_log.PredictionLogWriter | None

    @property
    def serving(self) -> Any:
        return self.config.model.serving


# ------------------------------------------------------------------ request helpers


def _runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise NoModelError("the service is starting")
    return runtime


def _served(runtime: Runtime) -> Served:
    served = runtime.holder.served
    if served is None:
        raise NoModelError(runtime.holder.not_ready_reason() or "no model loaded")
    return served


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in _JSON_TYPES:
        raise UnsupportedMediaTypeError(f"expected Content-Type application/json, got {content_type[:100]!r}")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex


def _submit(runtime: Runtime, records: list[dict[str, Any]]) -> None:
    """Hand records to the prediction log; an answer the log cannot take is not given (503)."""
    if runtime.writer is None:
        return
    try:
        runtime.writer.submit(records)
    except prediction_log.PredictionLogError as exc:
        raise NoModelError(f"prediction log unavailable: {exc}") from None


def _count(runtime: Runtime, served: Served, results: list[dict[str, Any]]) -> None:
    counter = runtime.metrics.predictions
    for result in results:
        counter.labels(served.version, result["risk_band"], result["decision"]).inc()


def _score(
    runtime: Runtime,
    served: Served,
    records: list[dict[str, Any]],
    *,
    request_ids: list[str],
    batch_id: str | None,
    reasons: bool,
    started: float,
) -> list[dict[str, Any]]:
    """Score, hand the records to the log, count: the one code path for every prediction."""
    scored = score_records(
        served,
        records,
        request_ids=request_ids,
        batch_id=batch_id,
        with_reasons=reasons,
        policy_version=runtime.config.model.decision.policy_version,
        started=started,
    )
    _submit(runtime, scored.log_records)
    _count(runtime, served, scored.results)
    return scored.results


def _score_one(runtime: Runtime, served: Served, body: bytes, request_id: str, reasons: bool, started: float) -> Any:
    record = served.parser.single(body)
    return _score(runtime, served, [record], request_ids=[request_id], batch_id=None, reasons=reasons, started=started)[
        0
    ]


def _score_many(runtime: Runtime, served: Served, body: bytes, batch_id: str, reasons: bool, started: float) -> Any:
    records = served.parser.many(body)
    request_ids = [f"{batch_id}-{i}" for i in range(len(records))]
    results = _score(
        runtime, served, records, request_ids=request_ids, batch_id=batch_id, reasons=reasons, started=started
    )
    return {"batch_id": batch_id, "model": served.model_ref, "results": results}


async def _offload(runtime: Runtime, heavy: bool, func: Any, *args: Any) -> Any:
    """Run scoring in the threadpool when it is heavy (a batch, or XGBoost's TreeSHAP, which releases
    the GIL so the loop parses the next requests meanwhile); a single applicant on the numpy runtime
    (~100 us) runs on the loop, where it costs less than the hand-off to a thread (bench/http_bench.py)."""
    mode = runtime.serving.offload_scoring
    if mode == "always" or (mode == "auto" and heavy):
        return await run_in_threadpool(func, *args)
    return func(*args)


_bearer = HTTPBearer(auto_error=False, description="CREDIT_RISK_ADMIN_TOKEN")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Runtime:
    """Bearer token, compared in constant time; no token configured: the admin routes do not exist."""
    runtime = _runtime(request)
    token = runtime.settings.admin_token
    if not token:
        raise NotFoundError("Not Found")
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("a bearer token is required")
    if not hmac.compare_digest(credentials.credentials.encode("utf-8", "surrogateescape"), token.encode()):
        raise ForbiddenError("the bearer token is not valid")
    return runtime


def _json_body(request_body: bytes, model: Any) -> Any:
    data = load_json(request_body)
    try:
        return model.model_validate(data)
    except Exception as exc:  # pydantic ValidationError
        if hasattr(exc, "errors"):
            raise InvalidInputError(
                problems_from_pydantic(exc.errors(include_url=False, include_input=False))
            ) from None
        raise


def _body_doc(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


# ------------------------------------------------------------------ routes


def _scoring_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["scoring"])
    scoring_errors = error_responses(400, 413, 415, 422, 503)
    request_id_doc = {
        "parameters": [
            {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "description": "Your id for this request (letters, digits, . _ : -; up to 128); else one is made",
                "schema": {"type": "string"},
            }
        ]
    }

    @router.post(
        "/predict",
        summary="Score one applicant",
        response_model=None,
        responses={200: {"model": PredictionResponse, "description": "The decision and its reasons"}, **scoring_errors},
        openapi_extra={**_body_doc("Applicant"), **request_id_doc},
    )
    async def predict(
        request: Request, reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)")
    ) -> Response:
        started = time.perf_counter()
        runtime = _runtime(request)
        _require_json(request)
        served = _served(runtime)  # this request finishes on this version, whatever reloads meanwhile
        body = await request.body()
        request_id = _request_id(request)
        heavy = reasons and not served.light_single  # XGBoost's TreeSHAP releases the GIL: worth a thread
        result = await _offload(runtime, heavy, _score_one, runtime, served, body, request_id, reasons, started)
        return json_response(result, headers={"X-Request-ID": request_id})

    @router.post(
        "/predict/batch",
        summary="Score many applicants (results in order)",
        response_model=None,
        responses={
            200: {"model": BatchResponse, "description": "One result per applicant, in order"},
            **scoring_errors,
        },
        openapi_extra=_body_doc("BatchRequest"),
    )
    async def predict_batch(
        request: Request, reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)")
    ) -> Response:
        started = time.perf_counter()
        runtime = _runtime(request)
        _require_json(request)
        served = _served(runtime)
        body = await request.body()
        batch_id = _request_id(request)
        result = await _offload(runtime, True, _score_many, runtime, served, body, batch_id, reasons, started)
        return json_response(result, headers={"X-Request-ID": batch_id})

    @router.get(
        "/model",
        summary="The served model: version, metrics, feature schema, policy, last reload",
        response_model=None,
        responses={200: {"model": ModelInfo}, **error_responses(503)},
    )
    async def model_info(request: Request) -> Response:
        runtime = _runtime(request)
        holder = runtime.holder
        served = holder.served
        attempts = {
            "last_reload": holder.last_reload.to_json() if holder.last_reload else None,
            "last_poll": holder.last_poll.to_json() if holder.last_poll else None,
        }
        if served is None:
            exc = NoModelError(holder.not_ready_reason() or "no model loaded")
            exc.extra = attempts  # type: ignore[attr-defined]
            raise exc
        model_config = runtime.config.model
        return json_response(
            {
                "name": served.name,
                "alias": served.alias,
                "version": served.version,
                "run_id": served.run_id,
                "trained_at": served.created_at,
                "loaded_at": served.loaded_at,
                "artifact_sha256": served.digest,
                "runtime": served.runtime,
                "metrics": served.metrics,
                "feature_schema": served.model.schema.model_dump(mode="json"),
                "decision": model_config.decision.model_dump(mode="json"),
                "scorecard": model_config.scorecard.model_dump(mode="json"),
                "risk_bands": [band.model_dump(mode="json") for band in model_config.risk_bands],
                "max_batch_size": model_config.serving.max_batch_size,
                "max_body_bytes": model_config.serving.max_body_bytes,
                "max_batch_body_bytes": model_config.serving.max_batch_body_bytes,
                **attempts,
            }
        )

    @router.get(
        "/registry",
        summary="Registered versions, aliases and the alias history (read-only)",
        response_model=None,
        responses={200: {"model": RegistryOut}, **error_responses(503)},
    )
    async def registry_view(request: Request) -> Response:
        runtime = _runtime(request)
        return json_response(await run_in_threadpool(_registry_snapshot, runtime))

    return router


def _registry_snapshot(runtime: Runtime) -> dict[str, Any]:
    name = runtime.config.model.registry.model_name
    try:
        client = registry.connect(runtime.settings, runtime.config.root)
        aliases = registry.aliases_of(client, name)
        versions = registry.list_versions(client, name)
        history = registry.alias_history(client, name)
    except Exception as exc:
        raise NoModelError(f"registry unreachable: {str(exc)[:300]}") from None
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    return {
        "name": name,
        "aliases": aliases,
        "versions": [
            {
                "version": str(v.version),
                "run_id": v.run_id,
                "created_at": datetime_ms(v.creation_timestamp),
                "tags": dict(v.tags),
                "aliases": sorted(by_version.get(str(v.version), [])),
            }
            for v in versions
        ],
        "history": [asdict(event) for event in history],
    }


def datetime_ms(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC).isoformat(timespec="seconds")


def _admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])
    auth_errors = error_responses(401, 403, 404)

    @router.post(
        "/reload",
        summary="Re-resolve the serving alias now (load and swap if it moved)",
        response_model=None,
        responses={200: {"model": ReloadOut}, **auth_errors, **error_responses(409, 503)},
    )
    async def reload(runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        attempt = await run_in_threadpool(runtime.holder.refresh, trigger="admin")
        return _reload_answer(runtime, attempt)

    @router.post(
        "/promote",
        summary="Promote a version to the serving alias through the promotion gates",
        response_model=None,
        responses={200: {"model": AdminActionOut}, **auth_errors, **error_responses(400, 413, 415, 422, 503)},
        openapi_extra=_body_doc("PromoteRequest"),
    )
    async def promote_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        _require_json(request)
        body: PromoteRequest = _json_body(await request.body(), PromoteRequest)
        from pipelines.promote import promote

        call = functools.partial(
            promote, runtime.config, runtime.settings, reason=body.reason, force=body.force, version=body.version
        )
        return await _alias_action(runtime, call)

    @router.post(
        "/rollback",
        summary="Move the serving alias back (to the previous holder, or a named version)",
        response_model=None,
        responses={200: {"model": AdminActionOut}, **auth_errors, **error_responses(400, 413, 415, 422, 503)},
        openapi_extra=_body_doc("RollbackRequest"),
    )
    async def rollback_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        _require_json(request)
        body: RollbackRequest = _json_body(await request.body(), RollbackRequest)
        from pipelines.rollback import rollback

        call = functools.partial(rollback, runtime.config, runtime.settings, version=body.version, reason=body.reason)
        return await _alias_action(runtime, call)

    return router


def _reload_answer(runtime: Runtime, attempt: Attempt) -> Response:
    served = runtime.holder.served
    body = {"attempt": attempt.to_json(), "served_version": served.version if served else None}
    if attempt.outcome in {"refused", "failed"}:
        exc = ConflictError(f"version {attempt.version} {attempt.outcome}: {attempt.error}")
        exc.extra = body  # type: ignore[attr-defined]
        raise exc
    if attempt.outcome == "registry_error":
        exc = NoModelError(f"registry unreachable: {attempt.error}")
        exc.extra = body  # type: ignore[attr-defined]
        raise exc
    return json_response(body)


async def _alias_action(runtime: Runtime, call: Any) -> Response:
    """Run a promote/rollback job in a worker thread, then follow the alias at once."""
    try:
        event = await run_in_threadpool(call)
    except registry.RegistryError as exc:  # PromotionRefused, RollbackRefused: the gates' text
        raise InvalidInputError([problem(["body", "version"], str(exc), type(exc).__name__)]) from None
    except Exception as exc:
        log.exception("admin alias action failed")
        raise NoModelError(f"registry unavailable: {str(exc)[:300]}") from None
    attempt = await run_in_threadpool(runtime.holder.refresh, trigger="admin")
    return json_response({"event": asdict(event), "reload": attempt.to_json()})


def _probe_router() -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/health", summary="Liveness", response_model=None, responses={200: {"model": Health}})
    async def health() -> Response:
        return json_response({"status": "ok"})

    @router.get(
        "/ready",
        summary="Readiness: a model is loaded and warm, and the service is not draining",
        response_model=None,
        responses={200: {"model": Readiness}, 503: {"model": Readiness, "description": "Not ready, with the reason"}},
    )
    async def ready(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        reason = "starting" if runtime is None else runtime.holder.not_ready_reason()
        if reason is not None:
            return json_response({"ready": False, "reason": reason}, 503)
        return json_response({"ready": True, "version": runtime.holder.served.version})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_model=None,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
    )
    async def metrics(request: Request) -> Response:
        runtime = _runtime(request)
        runtime.metrics.ready.set(0 if runtime.holder.not_ready_reason() else 1)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


# ------------------------------------------------------------------ lifespan


async def _poll_forever(runtime: Runtime) -> None:
    """Resolve the alias at start, then every ``poll_interval_seconds`` (``retry_seconds`` while nothing is served)."""
    trigger = "startup"
    while True:
        try:
            await anyio.to_thread.run_sync(
                functools.partial(runtime.holder.refresh, trigger=trigger), abandon_on_cancel=True
            )
        except Exception:
            log.exception("model poll failed")
        trigger = "poll"
        serving = runtime.serving
        await asyncio.sleep(serving.poll_interval_seconds if runtime.holder.served else serving.retry_seconds)


def _drain_on_sigterm(holder: ModelHolder, grace: float) -> Callable[[], None]:
    """On SIGTERM turn ``/ready`` false at once and keep serving ``grace`` seconds (so a load
    balancer stops sending), then hand over to uvicorn's own shutdown (stop accepting, finish
    in-flight requests, run the lifespan shutdown that flushes the log). Returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals belong to the main thread (e.g. not under TestClient)
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        holder.draining = True
        log.info("SIGTERM: not ready; shutting down in %.1fs", grace)
        if callable(previous):
            loop.call_soon_threadsafe(loop.call_later, grace, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return restore


def _start_writer(config: ProjectConfig, settings: Settings) -> Any | None:
    if not config.model.serving.prediction_log:
        return None
    writer = prediction_log.PredictionLogWriter(
        config.model.prediction_log,
        directory=prediction_log.resolve_log_dir(config, settings),
        schema=config.features,
        client_factory=functools.partial(registry.connect, settings, config.root),
        hash_key=settings.log_hash_key,
    )
    writer.start()
    return writer


def _fail_fast_registry_calls() -> None:
    # MLflow's HTTP client retries a refused connection for about four minutes by default: /ready
    # would say "starting" and a lost registry would go unreported that long. The poll loop is the
    # retry here, so each call gets 2 retries and 10 s (a deployment may still set its own).
    for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")):
        os.environ.setdefault(name, value)


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:  # uvicorn configures only its own loggers
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def create_app(config: ProjectConfig | None = None, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app. Nothing is read or started here: the lifespan does it."""
    metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _configure_logging()
        _fail_fast_registry_calls()
        run_settings = settings or Settings()
        run_config = config or load_project_config(run_settings.config_dir)
        writer = await run_in_threadpool(_start_writer, run_config, run_settings)

        def record_attempt(attempt: Attempt) -> None:
            metrics.reloads.labels(attempt.outcome).inc()

        holder = ModelHolder(
            config=run_config,
            client_factory=functools.partial(registry.connect, run_settings, run_config.root),
            warmup_rounds=run_config.model.serving.warmup_rounds,
            on_swap=lambda served: metrics.set_served(served.name, served.version),
            on_attempt=record_attempt,
        )
        runtime = Runtime(config=run_config, settings=run_settings, holder=holder, metrics=metrics, writer=writer)
        if writer is not None:
            metrics.add_gauges("credit_risk_prediction_log", "Prediction log writer counters", writer.stats)
        app.state.runtime = runtime
        app.openapi_schema = None
        poller = asyncio.create_task(_poll_forever(runtime), name="model-poller")
        restore_sigterm = _drain_on_sigterm(holder, run_config.model.serving.drain_grace_seconds)
        log.info("scoring service started (config %s)", run_config.config_dir)
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished in-flight requests: not ready, then drain the log
            holder.draining = True
            restore_sigterm()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            if writer is not None:
                await run_in_threadpool(writer.close, run_config.model.serving.drain_timeout_seconds)
            log.info("scoring service stopped")

    app = FastAPI(
        title="Credit-risk scoring API",
        version=API_VERSION,
        description=(
            "Scores loan applicants with the model version the registry's serving alias points to. "
            "Every answer names the model version that produced it; request bodies are validated against "
            "that version's own feature schema."
        ),
        lifespan=lifespan,
        default_response_class=Response,
    )
    errors.install(app)
    routers = [_probe_router(), _scoring_router(), _admin_router(), monitoring_router]
    for router in routers:
        app.include_router(router)
    known_paths = {"/openapi.json", "/docs", "/redoc"} | {
        route.path for router in routers for route in router.routes if hasattr(route, "path")
    }

    def _config() -> ProjectConfig | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.config if runtime else None

    def _limit(path: str) -> int:
        cfg = _config()
        if cfg is None:
            return 65536
        serving = cfg.model.serving
        return serving.max_batch_body_bytes if path == "/v1/predict/batch" else serving.max_body_bytes

    def _origins() -> tuple[str, ...] | None:
        cfg = _config()
        return cfg.model.serving.cors_origins if cfg else None

    # order: CORS answers preflights first; the body cap sits in front of everything that reads a body
    app.add_middleware(BodyLimitMiddleware, limit=_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: known_paths)
    app.add_middleware(ConfiguredCORS, origins=_origins)
    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with request schemas from the served model's feature schema."""
    runtime: Runtime | None = getattr(app.state, "runtime", None)
    served = runtime.holder.served if runtime else None
    key = served.version if served else None
    if app.openapi_schema is not None and getattr(app.state, "openapi_version", "-") == key:
        return app.openapi_schema
    if served is not None:
        parser = served.parser
    else:
        config = runtime.config if runtime else load_project_config(Settings().config_dir)
        parser = RequestParser.for_schema(config.features, max_batch=config.model.serving.max_batch_size)
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(parser.openapi_schemas())
    for model in (PromoteRequest, RollbackRequest):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    app.openapi_schema = document
    app.state.openapi_version = key
    return document


# ``uvicorn serving.app:app``: building it reads and starts nothing (see create_app).
app = create_app()


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.app [--workers N]``: serve on ``serving.host``:``serving.port`` (127.0.0.1:8000)."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="Run the credit-risk scoring API.")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serving = load_project_config(Settings().config_dir).model.serving
    # no access log: every scored request is in the prediction log and counted in /metrics
    uvicorn.run("serving.app:app", host=serving.host, port=serving.port, workers=args.workers, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
