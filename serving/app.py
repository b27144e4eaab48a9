"""The scoring service: ``uvicorn serving.app:app`` (the factory is :func:`create_app`).

Building the app reads nothing and starts nothing. The lifespan reads the
configuration and environment, starts the prediction log, and starts a
background task that resolves the serving alias, loads the version (verified
by its artifact hash) and keeps polling for alias moves. ``/ready`` turns
true once a model is warm and false again while draining on shutdown.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from credit_risk import cases, policy, registry, roles
from credit_risk.audit.request_ids import RequestIdLedger, ledger_path
from credit_risk.config import ProjectConfig, ServingConfig, Settings, load_project_config
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.decision_log.retention import retention_targets
from serving import errors, prediction_log
from serving.api.admin import admin_router
from serving.api.approvals import approvals_router
from serving.api.cases import BODIES as CASE_BODIES
from serving.api.cases import CaseGauges, automation_router, cases_router
from serving.api.decisions import decisions_router
from serving.api.deps import Runtime, hide_unavailable_routes
from serving.api.docs import DOCS, OAUTH2_REDIRECT, install_docs
from serving.api.experiments import experiments_router
from serving.api.fast import FastPredict
from serving.api.jobs import JobRequest, jobs_router
from serving.api.outcomes import outcomes_router
from serving.api.probes import probe_router
from serving.api.reports import reports_router
from serving.api.scoring import scoring_router
from serving.experiments import ExperimentFollower
from serving.metrics import MetricsMiddleware, ServiceMetrics, start_access_log
from serving.middleware import BodyLimitMiddleware, ConfiguredCORS, HostCheck
from serving.monitoring import router as monitoring_router
from serving.read_cache import ReadCache
from serving.requests import RequestParser
from serving.schemas import PromoteRequest, RollbackRequest
from serving.state import Attempt, ModelHolder

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"


# ------------------------------------------------------------------ lifespan


async def _poll_forever(runtime: Runtime, first_attempt: asyncio.Event) -> None:
    """Resolve the alias at start, then every ``poll_interval_seconds`` (``retry_seconds`` while nothing is served).
    ``first_attempt`` is set once the start's attempt has loaded a version or failed."""
    trigger = "startup"
    while True:
        try:
            await anyio.to_thread.run_sync(
                functools.partial(runtime.holder.refresh, trigger=trigger), abandon_on_cancel=True
            )
        except Exception:
            log.exception("model poll failed")
        try:  # the ledger's controls (stop switch, experiments), on the same beat and before the first request
            await anyio.to_thread.run_sync(runtime.refresh_controls, abandon_on_cancel=True)
        except Exception as exc:
            log.warning("ledger read failed: %s", exc)
        finally:
            first_attempt.set()
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


def _open_cases(config: ProjectConfig, settings: Settings) -> cases.CaseStore:
    """The case store, migrated to the newest schema (several workers starting at once migrate once)."""
    return cases.open_store(config.model.review, resolve_log_dir(config, settings))


async def _reconcile_forever(runtime: Runtime) -> None:
    """Open the cases of referrals whose answer left but whose case did not (a crash between the two):
    from the log's finished files, insert-if-absent, at start and every ``review.reconcile_seconds``."""
    while True:
        try:
            await anyio.to_thread.run_sync(runtime.cases.reconcile, abandon_on_cancel=True)
        except Exception as exc:
            log.warning("cases not reconciled with the decision log: %s", exc)
        await asyncio.sleep(runtime.config.model.review.reconcile_seconds)


def _start_writer(config: ProjectConfig, settings: Settings) -> Any | None:
    if not config.model.serving.prediction_log:
        return None
    log_config = config.model.prediction_log
    if settings.writer_id:  # this instance's name, from its environment
        log_config = log_config.model_copy(update={"writer_id": settings.writer_id})
    writer = prediction_log.PredictionLogWriter(
        log_config,
        directory=resolve_log_dir(config, settings),
        schema=config.features,
        client_factory=functools.partial(registry.connect, settings, config.root),
        hash_key=settings.log_hash_key,
        retention=retention_targets(config, settings),
    )
    writer.start()
    return writer


def _open_id_ledger(config: ProjectConfig, settings: Settings) -> RequestIdLedger | None:
    """The instance's ledger of request ids, kept with the log whose decisions they name."""
    if not config.model.serving.prediction_log:
        return None
    return RequestIdLedger(ledger_path(config, settings), retention_days=config.model.prediction_log.retention_days)


def _record_policy(config: ProjectConfig, settings: Settings) -> None:
    """Record the decision policy under its version the first time; a changed policy under a recorded
    version refuses the start. An unreachable registry only delays it (logged): it is retried at the next start."""
    try:
        client = registry.connect(settings, config.root)
        _, created = policy.record_policy(client, config.model)
    except policy.PolicyConflictError:
        raise
    except Exception as exc:
        log.warning(
            "decision policy %s not recorded (registry unreachable?): %s", config.model.decision.policy_version, exc
        )
        return
    if created:
        log.info("decision policy %s recorded", config.model.decision.policy_version)


async def _record_policy_at_start(config: ProjectConfig, settings: Settings, wait: float = 5.0) -> None:
    """Check the policy before serving; a registry too slow to answer does not hold up the start."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_record_policy, config, settings), wait)
    except TimeoutError:
        log.warning("decision policy check still running after %.0fs: starting meanwhile", wait)


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


class ServiceApp(FastAPI):
    """The FastAPI app with ``POST /v1/predict``'s common case answered in front of it
    (:mod:`serving.api.fast`; ``serving.fast_path: false`` sends every request through the framework)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast = FastPredict(super().__call__, self._fast_runtime, lambda: getattr(self.state, "access_log", None))
        # the Host allow-list in front of both: the fast path never sees a request it refuses
        self._front = HostCheck(self._fast, serving=self._serving)

    def _serving(self) -> ServingConfig | None:
        runtime: Runtime | None = getattr(self.state, "runtime", None)
        return runtime.serving if runtime is not None else None

    def _fast_runtime(self) -> Runtime | None:
        runtime: Runtime | None = getattr(self.state, "runtime", None)
        return runtime if runtime is not None and runtime.serving.fast_path else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front(scope, receive, send)


def create_app(config: ProjectConfig | None = None, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app. Nothing is read or started here: the lifespan does it."""
    metrics = ServiceMetrics()
    metrics_state = {"cases": False}  # the case figures' collector is registered once per app

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _configure_logging()
        _fail_fast_registry_calls()
        run_settings = settings or Settings()
        run_config = config or load_project_config(run_settings.config_dir)
        roles.role_tokens(run_settings)  # a badly named or shared token refuses the start, naming it
        if registry.signing_key(run_settings) is None:
            log.warning(registry.UNSIGNED_WARNING)
        await _record_policy_at_start(run_config, run_settings)
        writer = await run_in_threadpool(_start_writer, run_config, run_settings)
        if writer is not None:
            writer.bind_loop()  # its fsync answers are read on this loop, where the requests wait for them

        def record_attempt(attempt: Attempt) -> None:
            metrics.reloads.labels(attempt.outcome).inc()

        holder = ModelHolder(
            config=run_config,
            client_factory=functools.partial(registry.connect, run_settings, run_config.root),
            warmup_rounds=run_config.model.serving.warmup_rounds,
            signing_key=registry.signing_key(run_settings),
            on_swap=lambda served: metrics.set_served(served.name, served.version),
            on_attempt=record_attempt,
        )
        ids = await run_in_threadpool(_open_id_ledger, run_config, run_settings)
        runtime = Runtime(
            config=run_config,
            settings=run_settings,
            holder=holder,
            metrics=metrics,
            writer=writer,
            ids=ids,
            reads=ReadCache(run_config.model.serving.registry_read_cache_seconds),
        )
        # after the writer: its start turned what a killed writer left into log files the reconciliation reads
        runtime.cases = await run_in_threadpool(_open_cases, run_config, run_settings)
        reconciler = asyncio.create_task(_reconcile_forever(runtime), name="case-reconciler")
        if not metrics_state["cases"]:
            metrics.add_collector(CaseGauges(runtime))
            metrics_state["cases"] = True
        runtime.experiment = ExperimentFollower(holder, run_config)
        runtime.control_listeners.append(runtime.experiment.follow)
        if writer is not None:
            metrics.add_gauges("credit_risk_prediction_log", "Prediction log writer counters", writer.stats)
        app.state.runtime = runtime
        stop_access_log = None
        if run_config.model.serving.access_log:
            app.state.access_log, stop_access_log = start_access_log()
        app.openapi_schema = None
        first_attempt = asyncio.Event()
        poller = asyncio.create_task(_poll_forever(runtime, first_attempt), name="model-poller")
        restore_sigterm = _drain_on_sigterm(holder, run_config.model.serving.drain_grace_seconds)
        # uvicorn accepts only once the lifespan has started: a worker (of several sharing the socket)
        # takes no request before its model is warm, unless the registry keeps it waiting longer than this
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_attempt.wait(), run_config.model.serving.startup_wait_seconds)
        log.info("scoring service started (config %s)", run_config.config_dir)
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished in-flight requests: not ready, then drain the log
            holder.draining = True
            restore_sigterm()
            if stop_access_log is not None:
                app.state.access_log = None
                stop_access_log()
            for task in (poller, reconciler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if writer is not None:
                await run_in_threadpool(writer.close, run_config.model.serving.drain_timeout_seconds)
            if ids is not None:
                ids.close()
            runtime.cases.close()
            log.info("scoring service stopped")

    app = ServiceApp(
        title="Credit-risk scoring API",
        version=API_VERSION,
        description=(
            "Scores loan applicants with the model version the registry's serving alias points to. "
            "Every answer names the model version that produced it; request bodies are validated against "
            "that version's own feature schema."
        ),
        lifespan=lifespan,
        default_response_class=Response,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: /docs is served locally
        redoc_url=None,
    )
    errors.install(app)
    install_docs(app)
    routers = [probe_router(), scoring_router(), admin_router(), jobs_router(), monitoring_router, outcomes_router()]
    routers += [decisions_router(), reports_router(), cases_router(), automation_router()]
    routers += [approvals_router(), experiments_router()]
    for router in routers:
        app.include_router(router)
    known_paths = {"/openapi.json", DOCS, OAUTH2_REDIRECT} | {
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
        return serving.max_batch_body_bytes if path in ("/v1/predict/batch", "/v1/outcomes") else serving.max_body_bytes

    def _origins() -> tuple[str, ...] | None:
        cfg = _config()
        return cfg.model.serving.cors_origins if cfg else None

    # order: CORS answers preflights first; the body cap sits in front of everything that reads a body
    def _body_deadline() -> float:
        cfg = _config()
        return cfg.model.serving.body_timeout_seconds if cfg else 10.0

    app.add_middleware(BodyLimitMiddleware, limit=_limit, deadline=_body_deadline)
    app.add_middleware(
        MetricsMiddleware,
        metrics=metrics,
        routes=lambda: known_paths,
        access_log=lambda: getattr(app.state, "access_log", None),
    )
    app.add_middleware(ConfiguredCORS, origins=_origins)
    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    return app


def _leave_out_switched_off(document: dict[str, Any], settings: Settings) -> None:
    """Routes that answer 404 in this deployment (admin without a token) are not in its document."""
    off = set() if settings.admin_token else {"admin"}
    paths = document.get("paths", {})
    for path in list(paths):
        operations = {m: op for m, op in paths[path].items() if not off & set(op.get("tags", ()))}
        if operations:
            paths[path] = operations
        else:
            del paths[path]


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
    _leave_out_switched_off(document, runtime.settings if runtime else Settings())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(parser.openapi_schemas())
    for model in (PromoteRequest, RollbackRequest, JobRequest, *CASE_BODIES):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    if runtime is not None:
        hide_unavailable_routes(document, runtime.settings)
    app.openapi_schema = document
    app.state.openapi_version = key
    return document


# ``uvicorn serving.app:app``: building it reads and starts nothing (see create_app).
app = create_app()


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.app [--workers N] [--host H] [--port P]``: serve on ``serving.host``:``serving.port``
    (127.0.0.1:8000) unless given."""
    import argparse

    import uvicorn

    from serving.http_protocol import ServiceProtocol

    parser = argparse.ArgumentParser(description="Run the credit-risk scoring API.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", default=None, help="address to bind (default: serving.host)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default: serving.port)")
    args = parser.parse_args(argv)
    serving = load_project_config(Settings().config_dir).model.serving
    host = args.host or serving.host
    port = serving.port if args.port is None else args.port
    if not 1 <= port <= 65535:
        parser.error(f"--port: {port} is not a port number (1 to 65535)")
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # the workers inherit it: /metrics then sums every worker (Prometheus' multiprocess mode)
        metrics_dir = tempfile.mkdtemp(prefix="credit-risk-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    # no access log: every scored request is in the prediction log and counted in /metrics
    uvicorn.run(
        "serving.app:app",
        host=host,
        port=port,
        workers=args.workers,
        access_log=False,
        timeout_graceful_shutdown=serving.graceful_shutdown_seconds,
        limit_concurrency=serving.max_concurrency,  # counts open connections, idle ones too
        # silent connections closed after the header deadline; a request the parser refuses gets a problem body
        http=ServiceProtocol(serving.header_timeout_seconds),
        timeout_worker_healthcheck=60,  # a worker imports MLflow and loads a model before it answers pings
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
