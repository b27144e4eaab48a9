"""Scoring routes: one applicant, a batch, the served model and the registry (read-only)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk.audit.request_ids import Claim, RequestIdConflictError, RequestIdLedgerError, request_digest
from credit_risk.cases.policy import automation_mode
from serving import prediction_log
from serving.api.cases import automation_state, open_cases, review_settings
from serving.api.deps import Runtime, body_doc, request_id_from, require_json, runtime_of, served_of
from serving.api.reports import registry_snapshot
from serving.errors import ConflictError, NoModelError, error_responses, json_response
from serving.experiments import by_version, score_with_experiment
from serving.schemas import BatchResponse, ModelInfo, PredictionResponse, RegistryOut
from serving.state import Served

ROUTE = "/v1/predict"  # one applicant: also answered by serving.api.fast, in front of the framework
BATCH_ROUTE = "/v1/predict/batch"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on the stored first answer to a retried request id


@dataclass(frozen=True)
class Pending:
    """A scored request waiting for its record: the log's ticket, the claim on its request id, and the
    referrals whose cases open once the record is durable (answer body, log record)."""

    ticket: int | None
    claim: Claim | None
    referrals: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Replayed:
    """A retried request id's stored first answer (nothing was scored or logged again)."""

    answer: bytes


@dataclass(frozen=True)
class RequestId:
    """A request's id, and whether the client chose it (a retry of it may get the first answer)."""

    value: str
    client: bool

    @classmethod
    def of(cls, given: str | None, runtime: Runtime) -> RequestId:
        """The client's id when it is a valid one, else one the service makes (the ledger's, when it keeps one)."""
        value = request_id_from(given, runtime.ids.made if runtime.ids is not None else None)
        return cls(value, value == given)


def _submit(runtime: Runtime, served: Served, records: list[dict[str, Any]]) -> int | None:
    """Hand records to the prediction log (never waits); an answer the log cannot take is not given (503)."""
    if runtime.writer is None:
        return None
    try:
        return runtime.writer.submit(records, schema=served.model.schema)
    except prediction_log.PredictionLogError as exc:
        raise NoModelError(f"prediction log unavailable: {exc}") from None


def _claim(
    runtime: Runtime, rid: RequestId, request: tuple[str, str, bytes], parts: tuple[str, ...] = ()
) -> Claim | Replayed | None:
    """Reserve the request id (and a batch's row ids) before scoring: a request id names one decision.

    ``request`` is (route, query, body), digested only when the id is written to the ledger. An
    identical retry of a client's id gets its first answer; an id naming another request is 409."""
    if runtime.ids is None:
        return None
    if not rid.client and not parts:  # made just now, under the instance's key: no write needed (MadeIds)
        return Claim(rid.value, parts, rid.client)
    try:
        stored = runtime.ids.claim(rid.value, request_digest(*request), parts=parts, client=rid.client)
    except RequestIdConflictError as exc:
        error = ConflictError(str(exc))
        error.extra = {"request_id": exc.request_id, "rule": f"request_id_{exc.reason}"}  # type: ignore[attr-defined]
        raise error from None
    except RequestIdLedgerError as exc:  # no decision without its id recorded: refused as the log refuses
        raise NoModelError(f"request id ledger unavailable: {exc}") from None
    if stored is not None:
        return Replayed(stored)
    return Claim(rid.value, parts, rid.client)


def _scored_under(runtime: Runtime, claim: Claim | None, score: Any) -> Any:
    """Run ``score`` for a claimed id; the id is freed when no record was handed to the log."""
    try:
        return score()
    except BaseException:
        if claim is not None and runtime.ids is not None:
            runtime.ids.release(claim)
        raise


async def finish(runtime: Runtime, pending: Pending, result: Any) -> bytes:
    """Wait, off the loop's critical path, until the records are on disk (no answer leaves before its
    record), then keep the answer for retries of its id; returns the answer's JSON."""
    if runtime.writer is not None and pending.ticket is not None:
        try:
            await runtime.writer.wait_durable(pending.ticket)
        except prediction_log.PredictionLogError as exc:
            if pending.claim is not None and runtime.ids is not None:
                runtime.ids.release(pending.claim)
            raise NoModelError(f"prediction log unavailable: {exc}") from None
    if pending.referrals and runtime.cases is not None:
        await open_cases(runtime, pending.referrals)  # names each case in its answer (a retry gets it too)
    answer = orjson.dumps(result)
    if pending.claim is not None and runtime.ids is not None:
        runtime.ids.complete(pending.claim, answer)
    return answer


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
    recourse: bool = False,
) -> tuple[list[dict[str, Any]], int | None, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Score, hand the records to the log, count: the one code path for every prediction.

    Returns the bodies, the log's ticket (the route awaits it before answering) and the referrals."""
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
        with_recourse=recourse,
        paused=automation_mode(runtime.controls) == "paused",
    )
    ticket = None
    for group in by_version(scored.log_records):  # an experiment's split: one submission per version
        ticket = _submit(runtime, served, group)
    _count(runtime, served, scored.results)
    opening = runtime.config.model.review.decisions  # the decisions that open a case (opens_case, inlined)
    pairs = zip(scored.results, scored.log_records, strict=True)
    referrals = [(res, rec) for res, rec in pairs if res["decision"] in opening]
    return scored.results, ticket, referrals


def _query(reasons: bool, recourse: bool) -> str:
    """The options a request id's digest covers: a retry asking for more than the first answer is another request."""
    return f"reasons={reasons}" + ("&recourse=true" if recourse else "")


def _score_one(
    runtime: Runtime, served: Served, body: bytes, rid: RequestId, reasons: bool, started: float, recourse: bool = False
) -> Any:
    return score_applicant(runtime, served, served.parser.single(body), body, rid, reasons, started, recourse)


def score_applicant(
    runtime: Runtime,
    served: Served,
    record: dict[str, Any],
    body: bytes,
    rid: RequestId,
    reasons: bool,
    started: float,
    recourse: bool = False,
) -> tuple[Any, Pending | None]:
    """One parsed applicant, scored under its claimed request id: (result, pending), or (Replayed, None).

    ``recourse``: the answer also says what would change a decline or a referral."""
    claim = _claim(runtime, rid, (ROUTE, _query(reasons, recourse), body))
    if isinstance(claim, Replayed):
        return claim, None

    def score() -> tuple[Any, Pending]:
        results, ticket, referrals = _score(
            runtime,
            served,
            [record],
            request_ids=[rid.value],
            batch_id=None,
            reasons=reasons,
            started=started,
            recourse=recourse,
        )
        return results[0], Pending(ticket, claim, referrals)

    return _scored_under(runtime, claim, score)


def _score_many(
    runtime: Runtime, served: Served, body: bytes, rid: RequestId, reasons: bool, started: float, recourse: bool = False
) -> Any:
    records = served.parser.many(body)
    batch_id = rid.value
    request_ids = [f"{batch_id}-{i}" for i in range(len(records))]
    claim = _claim(runtime, rid, (BATCH_ROUTE, _query(reasons, recourse), body), tuple(request_ids))
    if isinstance(claim, Replayed):
        return claim, None

    def score() -> tuple[Any, Pending]:
        results, ticket, referrals = _score(
            runtime,
            served,
            records,
            request_ids=request_ids,
            batch_id=batch_id,
            reasons=reasons,
            started=started,
            recourse=recourse,
        )
        batch = {"batch_id": batch_id, "model": served.model_ref, "results": results}
        return batch, Pending(ticket, claim, referrals)

    return _scored_under(runtime, claim, score)


async def _offload(runtime: Runtime, heavy: bool, func: Any, *args: Any) -> Any:
    """Run scoring in the threadpool when it is heavy (a batch, or XGBoost's TreeSHAP, which releases
    the GIL so the loop parses the next requests meanwhile); a single applicant on the numpy runtime
    (~100 us) runs on the loop, where it costs less than the hand-off to a thread (bench/http_bench.py)."""
    mode = runtime.serving.offload_scoring
    if mode == "always" or (mode == "auto" and heavy):
        return await run_in_threadpool(func, *args)
    return func(*args)


async def _accept(request: Request) -> tuple[Runtime, Served, bytes, RequestId]:
    """A scoring request's runtime, the version it finishes on (whatever reloads meanwhile), body and id."""
    runtime = runtime_of(request)
    require_json(request)
    served = served_of(runtime)
    return runtime, served, await request.body(), RequestId.of(request.headers.get("x-request-id"), runtime)


async def _answer(runtime: Runtime, pending: Pending | None, result: Any, request_id: str) -> Response:
    """Answer once the log holds the request's rows (as durable as configured); a retried id's first answer."""
    headers = {"X-Request-ID": request_id}
    if isinstance(result, Replayed):
        return Response(result.answer, media_type="application/json", headers={**headers, REPLAYED_HEADER: "true"})
    assert pending is not None
    return Response(await finish(runtime, pending, result), media_type="application/json", headers=headers)


def scoring_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["scoring"])
    scoring_errors = error_responses(400, 409, 413, 415, 422, 503)
    recourse_doc = (
        "For a decline or a referral, also say what would change the decision: up to "
        "recourse.max_alternatives alternative applications the served model would approve (or refer)"
    )
    request_id_doc = {
        "parameters": [
            {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "description": (
                    "Your id for this request (letters, digits, . _ : -; up to 128); else one is made. "
                    "An id names one decision: a retry with the same body gets the first answer "
                    "(Idempotent-Replayed: true), another body with it is 409"
                ),
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
        request: Request,
        reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)"),
        recourse: bool = Query(False, description=recourse_doc),
    ) -> Response:
        started = time.perf_counter()
        runtime, served, body, rid = await _accept(request)
        # XGBoost's TreeSHAP releases the GIL, and a recourse search takes milliseconds: worth a thread
        heavy = recourse or (reasons and not served.light_single)
        result, pending = await _offload(
            runtime, heavy, _score_one, runtime, served, body, rid, reasons, started, recourse
        )
        return await _answer(runtime, pending, result, rid.value)

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
        request: Request,
        reasons: bool = Query(True, description="Compute reason codes (TreeSHAP)"),
        recourse: bool = Query(False, description=recourse_doc),
    ) -> Response:
        started = time.perf_counter()
        runtime, served, body, rid = await _accept(request)
        result, pending = await _offload(
            runtime, True, _score_many, runtime, served, body, rid, reasons, started, recourse
        )
        return await _answer(runtime, pending, result, rid.value)

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
                "signed": served.signed,
                "metrics": served.metrics,
                "feature_schema": served.model.schema.model_dump(mode="json"),
                "decision": model_config.decision.model_dump(mode="json"),
                "scorecard": model_config.scorecard.model_dump(mode="json"),
                "risk_bands": [band.model_dump(mode="json") for band in model_config.risk_bands],
                "max_batch_size": model_config.serving.max_batch_size,
                "max_body_bytes": model_config.serving.max_body_bytes,
                "max_batch_body_bytes": model_config.serving.max_batch_body_bytes,
                **attempts,
                "automation": automation_state(runtime),
                "review": review_settings(runtime),
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
        return json_response(await registry_snapshot(runtime))

    return router
