"""What starts and stops with the scoring service: the lifespan :func:`create_app` hands to FastAPI.

It reads the configuration and environment, records the decision policy, starts the prediction
log, the request-id ledger and the case store, and a background task that resolves the serving
alias, loads the version (verified by its artifact hash) and keeps polling for alias moves; on
shutdown it turns ``/ready`` false, stops the tasks and drains the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from types import FrameType
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from credit_risk import cases, policy, registry, roles
from credit_risk.audit.request_ids import RequestIdLedger, ledger_path
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.decision_log.retention import retention_targets
from serving import prediction_log
from serving.api.cases import CaseGauges
from serving.api.deps import Runtime
from serving.experiments import ExperimentFollower
from serving.metrics import ServiceMetrics, start_access_log
from serving.read_cache import ReadCache
from serving.state import Attempt, ModelHolder

log = logging.getLogger("serving.app")  # the service's start, stop and poll lines keep their logger name


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
    # retry here, so each call gets 2 retries, 10 s and a shorter backoff: MLflow's factor 2 waits about
    # 4.5 s per failing call, 1 about 2 s (a start against a dead registry makes three such calls before
    # it answers). A deployment may still set its own.
    for name, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "10"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),  # MLflow takes an integer here
        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.25"),
    ):
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the service's start, on again after (if it was on).

    The start imports MLflow, loads and warms up the model: about a million objects that live as long
    as the process, which the collector, left on, walks again and again as they arrive and frees almost
    none of. Off, a start to ready took 3.11 s of CPU instead of 3.44 s (``python -m bench.start_bench``),
    its memory at ready the same to within 2 MB. What the service allocates later is collected as before."""
    if not gc.isenabled():  # another start still running in this process, or a host that manages it
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:  # uvicorn configures only its own loggers
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def service_lifespan(
    metrics: ServiceMetrics, config: ProjectConfig | None, settings: Settings | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: ``config`` and ``settings`` are read at its start when not given."""
    metrics_state = {"cases": False}  # the case figures' collector is registered once per app

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with _collector_paused():  # on again once the service is up, or if its start fails
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

    return lifespan
