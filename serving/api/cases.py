"""Human oversight routes: the reviewers' queue and cases, contests, and the stop switch.

Thin: parse, call :mod:`credit_risk.cases` in a thread, record the action in the access log
with the caller's token name, answer. The reviewer role (an admin may review too) works cases;
the admin pauses and resumes automation through the registry's ledger, which every worker of
every instance follows within ``serving.poll_interval_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import cases as oversight
from credit_risk.cases.policy import AUTOMATION, automation_mode, reason_labels
from credit_risk.lifecycle import ledger
from serving.api.audit_services import find_decision
from serving.api.decision_bodies import decision_body
from serving.api.decisions import RequestId
from serving.api.deps import (
    ROLE_HEADER,
    Caller,
    Runtime,
    body_doc,
    json_body,
    require_admin,
    require_json,
    require_reviewer,
)
from serving.errors import (
    ConflictError,
    InvalidInputError,
    NoModelError,
    NotFoundError,
    error_responses,
    json_response,
    problem,
)

log = logging.getLogger(__name__)

_REVIEWER = {ROLE_HEADER: "reviewer"}
Reviewer = Annotated[Caller, Depends(require_reviewer)]
Admin = Annotated[Caller, Depends(require_admin)]
CaseId = Annotated[int, Path(ge=1, le=2**62, description="The case's number")]


_TEXT = r"^[^\x00]*$"  # no NUL: PostgreSQL's text refuses it


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecideRequest(_Body):
    decision: Literal["approve", "decline"] = Field(description="The final decision")
    reason_code: str | None = Field(
        None, max_length=64, description="From review.reason_codes; required when the decision overrides the model's"
    )
    note: str | None = Field(None, max_length=2000, pattern=_TEXT, description="Why, in the reviewer's words")


class ContestRequest(_Body):
    reason: str = Field(
        min_length=1, max_length=2000, pattern=_TEXT, description="What the applicant contests, in their words"
    )
    note: str | None = Field(
        None, max_length=2000, pattern=_TEXT, description="The reviewer's note on how it was received"
    )


class AutomationRequest(_Body):
    mode: Literal["paused", "on"] = Field(description="paused: every decision is referred to a human")
    reason: str = Field(min_length=1, max_length=500, pattern=_TEXT, description="Why (recorded in the ledger)")


BODIES = (DecideRequest, ContestRequest, AutomationRequest)


# ------------------------------------------------------------------ opening cases (called by scoring)


async def open_cases(runtime: Runtime, referrals: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Open the referrals' cases once their records are durable, and name each case in its answer.

    A store that fails does not fail the answer (the decision is durable in the log): the
    reconciliation opens the case from the log's file instead."""
    store: oversight.CaseStore = runtime.cases
    try:
        opened = await run_in_threadpool(store.open_cases, [record for _, record in referrals], source="answer")
    except Exception as exc:
        log.warning("cases not opened at answer (the log's reconciliation opens them): %s", exc)
        return
    due = timedelta(hours=runtime.config.model.review.sla_hours)
    for result, record in referrals:
        case_id = opened.get(record["request_id"])
        if case_id is not None:
            scored_at = record["scored_at"]
            result["case"] = {"id": case_id, "state": "open", "due_at": oversight.store.iso(scored_at + due)}


# ------------------------------------------------------------------ helpers


def _store(runtime: Runtime) -> oversight.CaseStore:
    if runtime.cases is None:
        raise NoModelError("the case store is starting")
    return runtime.cases


async def _act(caller: Caller, action: str, call: Any, **what: Any) -> dict[str, Any]:
    """Run a store call in a thread; map its refusals; record the attempt (whatever its end) in the access log."""
    status = 200
    try:
        return await run_in_threadpool(call)
    except oversight.CaseNotFoundError as exc:
        status = 404
        raise NotFoundError(str(exc)) from None
    except oversight.CaseConflictError as exc:
        status = 409
        error = ConflictError(str(exc))
        error.extra = {"case": exc.case}  # type: ignore[attr-defined]
        raise error from None
    except oversight.CaseRuleError as exc:
        status = 422
        raise InvalidInputError([problem(["body", exc.field], str(exc), exc.kind)]) from None
    except SQLAlchemyError as exc:  # the database is away (a PostgreSQL restart): say so, never a 500
        status = 503
        raise NoModelError(f"the case store is unavailable: {str(exc).splitlines()[0][:200]}") from None
    finally:
        caller.runtime.access.record(actor=caller.name, role=caller.role, action=action, status=status, **what)


async def _read(request: Request, model: type[_Body]) -> Any:
    require_json(request)
    return json_body(await request.body(), model)


def automation_state(runtime: Runtime) -> dict[str, Any]:
    """The stop switch as this worker last read it from the ledger (for /v1/model and the pages)."""
    event = runtime.controls.get(AUTOMATION)
    mode = automation_mode(runtime.controls)
    if event is None:
        return {"mode": mode, "since": None, "actor": None, "reason": None}
    return {"mode": mode, "since": event.at, "actor": event.actor, "reason": event.reason}


def review_settings(runtime: Runtime) -> dict[str, Any]:
    review = runtime.config.model.review
    return {
        "decisions": list(review.decisions),
        "sla_hours": review.sla_hours,
        "claim_minutes": review.claim_minutes,
        "reason_codes": reason_labels(review),
    }


def _application(runtime: Runtime, request: Request, request_id: str) -> dict[str, Any] | None:
    """The logged decision behind a case (inputs in the schema's words), when the log's files hold it yet."""
    record = find_decision(request, runtime, request_id)
    return decision_body(runtime, record, with_cases=False) if record is not None else None


# ------------------------------------------------------------------ routes


def cases_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["cases"])
    auth = error_responses(401, 403, 404)
    acting = {**auth, **error_responses(400, 409, 413, 415, 422, 503)}

    @router.get(
        "/cases",
        summary="The review queue: cases oldest due first (default: open and claimed ones)",
        response_model=None,
        responses={**auth, **error_responses(422, 503)},
        openapi_extra=_REVIEWER,
    )
    async def queue(
        request: Request,
        caller: Reviewer,
        state: Annotated[Literal["open", "claimed", "decided", "withdrawn"] | None, Query()] = None,
        band: Annotated[str | None, Query(min_length=1, max_length=32, description="A risk band")] = None,
        overdue: Annotated[
            bool | None, Query(description="Only cases past (true) or within (false) their due time")
        ] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int | None, Query(ge=1, le=500, description="Default review.page_size")] = None,
    ) -> Response:
        runtime = caller.runtime
        store = _store(runtime)
        size = page_size or runtime.config.model.review.page_size

        def read() -> oversight.store.QueuePage:
            return store.queue(state=state, band=band, overdue=overdue, page=page, page_size=size)

        found = await _act(caller, "case_queue", read, state=state, band=band, overdue=overdue, page=page)
        return json_response({"cases": found.cases, "total": found.total, "page": page, "page_size": size})

    @router.get(
        "/cases/{case_id}",
        summary="One case: the model's output, the application in the schema's words, the full history",
        response_model=None,
        responses={**auth, **error_responses(422, 503)},
        openapi_extra=_REVIEWER,
    )
    async def get_case(request: Request, case_id: CaseId, caller: Reviewer) -> Response:
        store = _store(caller.runtime)
        case = await _act(caller, "case_view", lambda: store.get(case_id), case_id=case_id)
        case["application"] = await run_in_threadpool(_application, caller.runtime, request, case["request_id"])
        return json_response(case)

    @router.post(
        "/cases/{case_id}/claim",
        summary="Take a case (one reviewer at a time; the claim lapses after review.claim_minutes)",
        response_model=None,
        responses=acting,
        openapi_extra=_REVIEWER,
    )
    async def claim(case_id: CaseId, caller: Reviewer) -> Response:
        store = _store(caller.runtime)
        return json_response(
            await _act(caller, "case_claim", lambda: store.claim(case_id, caller.actor), case_id=case_id)
        )

    @router.post(
        "/cases/{case_id}/release",
        summary="Give a claimed case back to the queue",
        response_model=None,
        responses=acting,
        openapi_extra=_REVIEWER,
    )
    async def release(case_id: CaseId, caller: Reviewer) -> Response:
        store = _store(caller.runtime)
        call = lambda: store.release(case_id, caller.actor)  # noqa: E731
        return json_response(await _act(caller, "case_release", call, case_id=case_id))

    @router.post(
        "/cases/{case_id}/decide",
        summary="Record the final decision (an override of the model needs a reason code)",
        response_model=None,
        responses=acting,
        openapi_extra={**_REVIEWER, **body_doc("DecideRequest")},
    )
    async def decide(request: Request, case_id: CaseId, caller: Reviewer) -> Response:
        body: DecideRequest = await _read(request, DecideRequest)
        store = _store(caller.runtime)

        def call() -> dict[str, Any]:
            return store.decide(
                case_id, caller.actor, decision=body.decision, reason_code=body.reason_code, note=body.note
            )

        decided = await _act(
            caller, "case_decide", call, case_id=case_id, decision=body.decision, reason_code=body.reason_code
        )
        return json_response(decided)

    @router.post(
        "/decisions/{request_id}/contest",
        summary="Record an applicant's contest of a decision (opens a case; the decision's record never changes)",
        response_model=None,
        status_code=201,
        responses=acting,
        openapi_extra={**_REVIEWER, **body_doc("ContestRequest")},
        tags=["cases"],
    )
    async def contest(request: Request, request_id: RequestId, caller: Reviewer) -> Response:
        body: ContestRequest = await _read(request, ContestRequest)
        runtime = caller.runtime
        store = _store(runtime)

        def call() -> dict[str, Any]:
            record = find_decision(request, runtime, request_id)
            if record is None:
                raise oversight.CaseNotFoundError(f"no logged decision has request id {request_id!r}")
            return store.contest(record, caller.actor, reason=body.reason, note=body.note)

        return json_response(await _act(caller, "contest", call, request_id=request_id), status=201)

    return router


def automation_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.post(
        "/automation",
        summary="The stop switch: pause automation (every decision referred to a human) or turn it back on",
        response_model=None,
        responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
        openapi_extra={ROLE_HEADER: "admin", **body_doc("AutomationRequest")},
    )
    async def set_automation(request: Request, caller: Admin) -> Response:
        body: AutomationRequest = await _read(request, AutomationRequest)
        runtime = caller.runtime

        def record() -> dict[str, Any]:
            client = runtime.holder.client()
            event = ledger.record_control(
                client,
                runtime.config.model.registry.model_name,
                AUTOMATION,
                action="pause" if body.mode == "paused" else "resume",
                reason=body.reason,
                actor=caller.actor,
                figures={"mode": body.mode},
            )
            runtime.refresh_controls()  # this worker follows at once; the others at their next poll
            return {"sequence": event.sequence, "at": event.at}

        status = 200
        try:
            entry = await run_in_threadpool(record)
        except Exception as exc:
            status = 503
            raise NoModelError(f"registry unavailable: the stop switch was not recorded: {str(exc)[:300]}") from None
        finally:
            runtime.access.record(
                actor=caller.name,
                role=caller.role,
                action="automation",
                status=status,
                mode=body.mode,
                reason=body.reason,
            )
        return json_response({**automation_state(runtime), "ledger": entry})

    return router


# ------------------------------------------------------------------ /metrics


class CaseGauges:
    """Open and overdue cases, and the oldest open case's age, read from the store at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Any:
        store = self._runtime.cases
        if store is None:
            return
        try:
            figures = store.gauges(now=datetime.now(UTC))
        except Exception as exc:  # a scrape never fails because the store is down
            log.warning("case figures not read: %s", exc)
            return
        yield GaugeMetricFamily("credit_risk_cases_open", "Cases open or claimed", value=figures["open"])
        yield GaugeMetricFamily(
            "credit_risk_cases_overdue", "Open or claimed cases past their due time", value=figures["overdue"]
        )
        yield GaugeMetricFamily(
            "credit_risk_cases_oldest_age_seconds",
            "Age of the oldest open or claimed case",
            value=figures["oldest_age_seconds"],
        )
