"""Scoring routes: one applicant, a batch, the served model and the registry (read-only)."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import lifecycle, registry
from serving import prediction_log
from serving.api.deps import Runtime, body_doc, request_id_of, require_json, runtime_of, served_of
from serving.api.reports import REPORT_TAG, report_path
from serving.errors import NoModelError, error_responses, json_response
from serving.experiments import by_version, score_with_experiment
from serving.schemas import BatchResponse, ModelInfo, PredictionResponse, RegistryOut
from serving.state import Served

ROUTE = "/v1/predict"  # one applicant: also answered by serving.api.fast, in front of the framework


def _submit(runtime: Runtime, served: Served, records: list[dict[str, Any]]) -> int | None:
    """Hand records to the prediction log (never waits); an answer the log cannot take is not given (503)."""
    if runtime.writer is None:
        return None
    try:
        return runtime.writer.submit(records, schema=served.model.schema)
    except prediction_log.PredictionLogError as exc:
        raise NoModelError(f"prediction log unavailable: {exc}") from None


async def _durable(runtime: Runtime, ticket: int | None) -> None:
    """Wait, off the loop's critical path, until the records are on disk: no answer leaves before its record."""
    if runtime.writer is None or ticket is None:
        return
    try:
        await runtime.writer.wait_durable(ticket)
    except prediction_log.PredictionLogError as exc:
        raise NoModelError(f"prediction log unavailable: {exc}") from None


def _count(runtime: Runtime, served: Served, results: list[dict[str, Any]]) -> None:
    metrics = runtime.metrics
    for result in results:
        version = result["model"]["version"]  # an experiment's challenger arm counts as its own version
        metrics.child(metrics.predictions, version, result["risk_band"], result["decision"]).inc()


def _score(
    runtime: Runtime,
    served: Served,
    records: list[dict[str, Any]],
    *,
    request_ids: list[str],
    batch_id: str | None,
    reasons: bool,
    started: float,
) -> tuple[list[dict[str, Any]], int | None]:
    """Score, hand the records to the log, count: the one code path for every prediction.

    Returns the bodies and the log's ticket; the route awaits the ticket before answering."""
    scored = score_with_experiment(
        runtime.experiment,
        served,
        records,
        request_ids=request_ids,
        batch_id=batch_id,
        with_reasons=reasons,
        policy_version=runtime.config.model.decision.policy_version,
        started=started,
        now=runtime.clock(),
    )
    ticket = None
    for group in by_version(scored.log_records):  # an experiment's split: one submission per version
        ticket = _submit(runtime, served, group)
    _count(runtime, served, scored.results)
    return scored.results, ticket


def _score_one(runtime: Runtime, served: Served, body: bytes, request_id: str, reasons: bool, started: float) -> Any:
    return _score_record(runtime, served, served.parser.single(body), request_id, reasons, started)


def _score_record(
    runtime: Runtime, served: Served, record: dict[str, Any], request_id: str, reasons: bool, started: float
) -> Any:
    results, ticket = _score(
        runtime, served, [record], request_ids=[request_id], batch_id=None, reasons=reasons, started=started
    )
    return results[0], ticket


def _score_many(runtime: Runtime, served: Served, body: bytes, batch_id: str, reasons: bool, started: float) -> Any:
    records = served.parser.many(body)
    request_ids = [f"{batch_id}-{i}" for i in range(len(records))]
    results, ticket = _score(
        runtime, served, records, request_ids=request_ids, batch_id=batch_id, reasons=reasons, started=started
    )
    return {"batch_id": batch_id, "model": served.model_ref, "results": results}, ticket


async def _offload(runtime: Runtime, heavy: bool, func: Any, *args: Any) -> Any:
    """Run scoring in the threadpool when it is heavy (a batch, or XGBoost's TreeSHAP, which releases
    the GIL so the loop parses the next requests meanwhile); a single applicant on the numpy runtime
    (~100 us) runs on the loop, where it costs less than the hand-off to a thread (bench/http_bench.py)."""
    mode = runtime.serving.offload_scoring
    if mode == "always" or (mode == "auto" and heavy):
        return await run_in_threadpool(func, *args)
    return func(*args)


async def _accept(request: Request) -> tuple[Runtime, Served, bytes, str]:
    """A scoring request's runtime, the version it finishes on (whatever reloads meanwhile), body and id."""
    runtime = runtime_of(request)
    require_json(request)
    served = served_of(runtime)
    return runtime, served, await request.body(), request_id_of(request)


async def _answer(runtime: Runtime, ticket: int | None, result: Any, request_id: str) -> Response:
    """Answer once the log holds the request's rows (as durable as configured)."""
    await _durable(runtime, ticket)
    return json_response(result, headers={"X-Request-ID": request_id})


def scoring_router() -> APIRouter:
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
        ROUTE.removeprefix(router.prefix),
        summary="Score one applicant",
        response_model=None,
        responses={200: {"model": PredictionResponse, "description": "The decision and its reasons"}, **scoring_errors},
        openapi_extra={**body_doc("Applicant"), **request_id_doc},
    )
    async def predict(
        request: Request, reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)")
    ) -> Response:
        started = time.perf_counter()
        runtime, served, body, request_id = await _accept(request)
        heavy = reasons and not served.light_single  # XGBoost's TreeSHAP releases the GIL: worth a thread
        result, ticket = await _offload(runtime, heavy, _score_one, runtime, served, body, request_id, reasons, started)
        return await _answer(runtime, ticket, result, request_id)

    @router.post(
        "/predict/batch",
        summary="Score many applicants (results in order)",
        response_model=None,
        responses={
            200: {"model": BatchResponse, "description": "One result per applicant, in order"},
            **scoring_errors,
        },
        openapi_extra=body_doc("BatchRequest"),
    )
    async def predict_batch(
        request: Request, reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)")
    ) -> Response:
        started = time.perf_counter()
        runtime, served, body, batch_id = await _accept(request)
        result, ticket = await _offload(runtime, True, _score_many, runtime, served, body, batch_id, reasons, started)
        return await _answer(runtime, ticket, result, batch_id)

    @router.get(
        "/model",
        summary="The served model: version, metrics, feature schema, policy, last reload",
        response_model=None,
        responses={200: {"model": ModelInfo}, **error_responses(503)},
    )
    async def model_info(request: Request) -> Response:
        runtime = runtime_of(request)
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
        runtime = runtime_of(request)
        return json_response(await run_in_threadpool(_registry_snapshot, runtime))

    return router


def _registry_snapshot(runtime: Runtime) -> dict[str, Any]:
    name = runtime.config.model.registry.model_name
    try:
        client = registry.connect(runtime.settings, runtime.config.root)
        aliases = registry.aliases_of(client, name)
        versions = registry.list_versions(client, name)
        history = lifecycle.alias_history(client, name)
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
                "validation_report": report_path(str(v.version)) if REPORT_TAG in v.tags else None,
            }
            for v in versions
        ],
        "history": [asdict(event) for event in history],
    }


def datetime_ms(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC).isoformat(timespec="seconds")
