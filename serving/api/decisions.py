"""Decision routes (auditor role; absent when no auditor or admin token is configured).

Find a logged decision by request id or by applicant, replay it with the model version and
policy that made it, print its adverse-action notice. Every call is recorded in the access log
with the caller's token name.

Its parts: :mod:`serving.api.audit_services` (the decision index, the access log, the version
cache) and :mod:`serving.api.decision_bodies` (a logged decision as the API shows it).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk.audit import notices, replay
from credit_risk.decision_log.privacy import applicant_id_as_logged, hash_key_of
from serving.api.audit_services import audit_services, lookup_decision
from serving.api.decision_bodies import decision_body
from serving.api.decision_schemas import DecisionOut, DecisionPage, RecourseOut, ReplayOut
from serving.api.deps import (
    DECISION_ID_MAX,
    DECISION_ID_PATTERN,
    ROLE_HEADER,
    Caller,
    require_auditor,
    runtime_of,
    served_of,
)
from serving.errors import InvalidInputError, NoModelError, NotFoundError, error_responses, json_response, problem

_ROLE = {ROLE_HEADER: "auditor"}
RequestId = Annotated[
    str, Path(pattern=DECISION_ID_PATTERN, max_length=DECISION_ID_MAX, description="The decision's request id")
]
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
Auditor = Annotated[Caller, Depends(require_auditor)]


def _parse_moment(name: str, text: str | None, default: datetime, *, end: bool) -> datetime:
    """A query's instant in UTC: a date-time, or a date (as ``end`` it includes that whole day)."""
    if not text:
        return default
    whole_day = re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None
    try:
        if whole_day:
            moment = datetime.combine(date.fromisoformat(text), time(), UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            [problem(["query", name], "must be an ISO 8601 date (YYYY-MM-DD) or UTC date-time", "datetime_parsing")]
        ) from None
    try:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment + timedelta(days=1) if end and whole_day else moment
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC; the day after 9999-12-31 in year 10000
        raise InvalidInputError(
            [
                problem(
                    ["query", name],
                    f"must fall between {_EARLIEST.date()} and {_LATEST.date()} in UTC"
                    + (" (a date as end counts to the end of that day, so at most 9999-12-30)" if end else ""),
                    "datetime_out_of_range",
                )
            ]
        ) from None


def decisions_router() -> APIRouter:
    router = APIRouter(prefix="/v1/decisions", tags=["decisions"])
    auth = error_responses(401, 403, 404)

    @router.get(
        "/{request_id}",
        summary="One logged decision: inputs (privacy applied), outputs, reasons, notice",
        response_model=None,
        responses={200: {"model": DecisionOut}, **auth, **error_responses(422, 503)},
        openapi_extra=_ROLE,
    )
    async def get_decision(request: Request, request_id: RequestId, caller: Auditor) -> Response:
        runtime = runtime_of(request)
        services = audit_services(request, runtime)
        try:
            record = await run_in_threadpool(lookup_decision, services, request_id)
        except NotFoundError:
            services.access.record(
                actor=caller.name, role=caller.role, action="view", status=404, request_id=request_id
            )
            raise
        services.access.record(actor=caller.name, role=caller.role, action="view", status=200, request_id=request_id)
        return json_response(await run_in_threadpool(decision_body, runtime, record, with_recourse=True))

    @router.get(
        "",
        summary="An applicant's decisions in a time window, newest first, paged",
        response_model=None,
        responses={200: {"model": DecisionPage}, **auth, **error_responses(422, 503)},
        openapi_extra=_ROLE,
    )
    async def list_decisions(
        request: Request,
        caller: Auditor,
        applicant_id: Annotated[str, Query(min_length=1, max_length=128, description="The applicant's id")],
        start: Annotated[
            str | None, Query(max_length=40, description="From (UTC date or date-time); default: retention_days ago")
        ] = None,
        end: Annotated[
            str | None, Query(max_length=40, description="Until (a date includes that day); default: now")
        ] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[
            int | None, Query(ge=1, le=5000, description="Default audit.page_size, at most audit.max_page_size")
        ] = None,
    ) -> Response:
        runtime = runtime_of(request)
        audit = runtime.config.model.audit
        size = page_size or audit.page_size
        if size > audit.max_page_size:
            raise InvalidInputError(
                [
                    problem(
                        ["query", "page_size"],
                        f"at most audit.max_page_size ({audit.max_page_size})",
                        "less_than_equal",
                    )
                ]
            )
        now = datetime.now(UTC)
        retention = timedelta(days=runtime.config.model.prediction_log.retention_days)
        first = _parse_moment("start", start, now - retention, end=False)
        last = _parse_moment("end", end, now + timedelta(seconds=1), end=True)
        as_logged = applicant_id_as_logged(runtime.config.model.prediction_log, hash_key_of(runtime.settings))
        if as_logged is None:
            raise InvalidInputError(
                [
                    problem(
                        ["query", "applicant_id"],
                        "applicant ids are not kept in this decision log (prediction_log.drop_fields lists "
                        "applicant_id): look a decision up by its request id",
                        "not_kept",
                    )
                ]
            )
        logged_id = as_logged(applicant_id)  # the keyed hash when applicant_id is hashed: it matches the log
        services = audit_services(request, runtime)

        def lookup() -> tuple[list[dict[str, Any]], int]:
            return services.index.by_applicant(logged_id, start=first, end=last, limit=size, offset=(page - 1) * size)

        records, total = await run_in_threadpool(lookup)
        services.access.record(
            actor=caller.name,
            role=caller.role,
            action="search",
            status=200,
            applicant_id=logged_id,  # as the log holds it: the access log keeps no clearer copy
            start=first.isoformat(),
            end=last.isoformat(),
            page=page,
            returned=[r["request_id"] for r in records],
        )
        return json_response(
            {
                "applicant_id": applicant_id,
                "start": first.isoformat(),
                "end": last.isoformat(),
                "total": total,
                "page": page,
                "page_size": size,
                "decisions": await run_in_threadpool(
                    lambda: [decision_body(runtime, {**r, "applicant_id": applicant_id}) for r in records]
                ),
            }
        )

    @router.post(
        "/{request_id}/replay",
        summary="Re-make a logged decision with the model version and policy that made it",
        response_model=None,
        responses={200: {"model": ReplayOut}, **auth, **error_responses(422, 503)},
        openapi_extra=_ROLE,
    )
    async def replay_decision(request: Request, request_id: RequestId, caller: Auditor) -> Response:
        runtime = runtime_of(request)
        services = audit_services(request, runtime)

        def run() -> replay.RecordReplay:
            record = lookup_decision(services, request_id)
            with services.replay_lock:  # one download of a version at a time; later ones hit the cache
                return replay.replay_records([record], services.cache)[0]

        try:
            result = await run_in_threadpool(run)
        except NotFoundError:
            services.access.record(
                actor=caller.name, role=caller.role, action="replay", status=404, request_id=request_id
            )
            raise
        services.access.record(
            actor=caller.name,
            role=caller.role,
            action="replay",
            status=200,
            request_id=request_id,
            outcome=result.status,
        )
        return json_response(result.to_json())

    @router.get(
        "/{request_id}/recourse",
        summary="What would change a logged decision: alternatives the served version would approve (or refer)",
        response_model=None,
        responses={200: {"model": RecourseOut}, **auth, **error_responses(422, 503)},
        openapi_extra=_ROLE,
    )
    async def decision_recourse(request: Request, request_id: RequestId, caller: Auditor) -> Response:
        runtime = runtime_of(request)
        services = audit_services(request, runtime)
        served = served_of(runtime)

        def search() -> dict[str, Any]:
            record = lookup_decision(services, request_id)
            if served.recourse is None:
                raise NoModelError("the served version has no recourse search")
            decision, answer = served.recourse.search_logged(record)
            return {
                "request_id": request_id,
                "logged": {
                    "model_version": record.get("model_version"),
                    "decision": record.get("decision"),
                    "probability_of_default": record.get("probability"),
                },
                "model": served.model_ref,
                "decision": decision,
                **answer.to_json(),
            }

        try:
            body = await run_in_threadpool(search)
        except NotFoundError:
            services.access.record(
                actor=caller.name, role=caller.role, action="recourse", status=404, request_id=request_id
            )
            raise
        services.access.record(
            actor=caller.name, role=caller.role, action="recourse", status=200, request_id=request_id
        )
        return json_response(body)

    @router.get(
        "/{request_id}/notice.pdf",
        summary="The decision's adverse-action notice as a printable PDF (404 when its decision needs none)",
        response_model=None,
        responses={
            200: {"content": {"application/pdf": {}}, "description": "The notice"},
            **auth,
            **error_responses(422, 503),
        },
        openapi_extra=_ROLE,
    )
    async def notice_pdf(request: Request, request_id: RequestId, caller: Auditor) -> Response:
        runtime = runtime_of(request)
        services = audit_services(request, runtime)

        def build() -> bytes | None:
            record = lookup_decision(services, request_id)
            notice = decision_body(runtime, record, with_recourse=True)["notice"]  # the final decision's
            return notices.render_pdf(notice) if notice else None

        try:
            pdf = await run_in_threadpool(build)
        except NotFoundError:
            services.access.record(
                actor=caller.name, role=caller.role, action="notice", status=404, request_id=request_id
            )
            raise
        status = 200 if pdf is not None else 404
        services.access.record(
            actor=caller.name, role=caller.role, action="notice", status=status, request_id=request_id
        )
        if pdf is None:
            raise NotFoundError(f"decision {request_id!r} needs no adverse-action notice")
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="notice-{request_id}.pdf"'},
        )

    return router
