"""The scoring service: ``uvicorn serving.app:app`` (the factory is :func:`create_app`).

Building the app reads nothing and starts nothing. The lifespan (:mod:`serving.lifespan`) reads
the configuration and environment, starts the prediction log, and starts a background task that
resolves the serving alias, loads the version (verified by its artifact hash) and keeps polling
for alias moves. ``/ready`` turns true once a model is warm and false again while draining on
shutdown. The OpenAPI document is :mod:`serving.openapi`'s; ``python -m serving.app`` runs
:func:`main`.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from credit_risk.config import ProjectConfig, ServingConfig, Settings, load_project_config
from credit_risk.scoring import BOOSTERS_ONLY_VARIABLE
from serving import errors
from serving.api.admin import admin_router
from serving.api.approvals import approvals_router
from serving.api.cases import automation_router, cases_router
from serving.api.decisions import decisions_router
from serving.api.deps import Runtime
from serving.api.docs import DOCS, OAUTH2_REDIRECT, install_docs
from serving.api.experiments import experiments_router
from serving.api.fast import FastPredict
from serving.api.jobs import jobs_router
from serving.api.outcomes import outcomes_router
from serving.api.probes import probe_router
from serving.api.reports import reports_router
from serving.api.scoring import scoring_router
from serving.lifespan import service_lifespan
from serving.metrics import MetricsMiddleware, ServiceMetrics
from serving.middleware import BodyLimitMiddleware, ConfiguredCORS, HostCheck
from serving.monitoring import router as monitoring_router
from serving.openapi import openapi_document

API_VERSION = "1.0.0"


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
    app = ServiceApp(
        title="Credit-risk scoring API",
        version=API_VERSION,
        description=(
            "Scores loan applicants with the model version the registry's serving alias points to. "
            "Every answer names the model version that produced it; request bodies are validated against "
            "that version's own feature schema."
        ),
        lifespan=service_lifespan(metrics, config, settings),
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
    app.openapi = functools.partial(openapi_document, app)  # type: ignore[method-assign]
    return app


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
    # this process and its workers load and run boosters, never fit one: XGBoost without scikit-learn
    os.environ.setdefault(BOOSTERS_ONLY_VARIABLE, "1")
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
