"""Outcome routes: ``POST /v1/outcomes`` (admin) loads loan outcomes; ``GET /v1/performance`` serves
the latest realized-performance summary (written by ``pipelines/performance``; computed nothing here).

A posted batch is all or nothing: when any row breaks a rule, the answer is a
422 naming every bad row and its rule, and nothing is stored (fix and resend:
a load is idempotent, so resending rows already stored adds nothing). The file
job (``mlflow run . -e outcomes``) instead stores the good rows and writes the
refused ones to a rejects file.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk.decision_log.paths import read_dirs, resolve_log_dir
from credit_risk.decision_log.privacy import applicant_id_as_logged, hash_key_of
from credit_risk.outcomes.ingest import check_rows
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.performance import PerformanceSummary, summary_path
from serving.api.deps import DECISION_ID_MAX, ROLE_HEADER, Runtime, require_admin, require_json, runtime_of
from serving.errors import (
    InvalidInputError,
    NotFoundError,
    error_responses,
    json_response,
    problem,
    problems_from_pydantic,
)
from serving.requests import load_json

NO_SUMMARY = "no performance summary yet: run `mlflow run . -e performance`"
_ID = Annotated[str, Field(min_length=1, max_length=128)]


class OutcomeRow(BaseModel):
    """One loan's outcome: the decision it belongs to (request_id, or applicant_id), what happened, when."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    request_id: Annotated[str, Field(min_length=1, max_length=DECISION_ID_MAX)] | None = Field(
        None, description="The request_id of the decision (as the API answered it)"
    )
    applicant_id: _ID | None = Field(
        None, description="Or the applicant_id sent with the decision (refused when it has several: give request_id)"
    )
    outcome: str = Field(min_length=1, max_length=64, description="The target's own terms, e.g. bad or good")
    observed_at: str = Field(min_length=10, max_length=40, description="ISO 8601 date or timestamp (UTC)")


class OutcomesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={
            "examples": [{"outcomes": [{"request_id": "3f2a9c", "outcome": "good", "observed_at": "2027-01-15"}]}]
        },
    )

    outcomes: list[OutcomeRow] = Field(min_length=1)


class OutcomesStored(BaseModel):
    rows: int
    added: int
    corrected: int
    unchanged: int
    load_id: str


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its ``$defs`` references written in place (the route documents its own body)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


_SCHEMA = OutcomesRequest.model_json_schema()
_REQUEST_DOC = {
    ROLE_HEADER: "admin",  # without an admin token the route answers 404: it is left out of the document
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(_SCHEMA, _SCHEMA.get("$defs", {}))}},
    },
}


def _parse(body: bytes, max_rows: int) -> OutcomesRequest:
    data = load_json(body)
    if isinstance(data, dict) and isinstance(data.get("outcomes"), list) and len(data["outcomes"]) > max_rows:
        count = len(data["outcomes"])
        raise InvalidInputError(
            [problem(["body", "outcomes"], f"at most {max_rows} outcomes per request, got {count}", "too_long")]
        )
    try:
        return OutcomesRequest.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_pydantic(exc.errors(include_url=False, include_input=False))
        for entry in problems:  # a row's index, as the batch endpoint names it
            loc = entry["loc"]
            if len(loc) > 2 and loc[1] == "outcomes" and isinstance(loc[2], int):
                entry["row"] = loc[2]
        raise InvalidInputError(problems) from None


def _store(runtime: Runtime, request: OutcomesRequest) -> dict[str, Any]:
    config = runtime.config
    log_dir = resolve_log_dir(config, runtime.settings)
    frame = pd.DataFrame([row.model_dump() for row in request.outcomes], dtype=object)
    checked = check_rows(
        frame,
        log_dir=read_dirs(config, runtime.settings),
        model_name=config.model.registry.model_name,
        target=config.features.target,
        applicant_id=applicant_id_as_logged(config.model.prediction_log, hash_key_of(runtime.settings)),
    )
    if checked.rejected:
        field_of = {
            "unknown_outcome": "outcome",
            "invalid_observed_at": "observed_at",
            "ambiguous_applicant": "applicant_id",
        }
        raise InvalidInputError(
            [
                problem(
                    ["body", "outcomes", int(r.row) - 1, field_of.get(r.rule, "request_id")],
                    f"{r.message}; nothing was stored",
                    r.rule,
                    row=int(r.row) - 1,
                )
                for r in checked.rejects.itertuples()
            ]
        )
    result = OutcomeTable(resolve_outcomes_dir(config, log_dir)).store(checked.accepted, source="api")
    return OutcomesStored(
        rows=len(frame),
        added=result.added,
        corrected=result.corrected,
        unchanged=result.unchanged,
        load_id=result.load_id,
    ).model_dump()


def _summary(runtime: Runtime) -> dict[str, Any]:
    config = runtime.config
    path = summary_path(config.model.performance, resolve_log_dir(config, runtime.settings), config.root)
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(NO_SUMMARY) from None
    return PerformanceSummary.model_validate_json(text).model_dump(mode="json")


def outcomes_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["outcomes"])

    @router.post(
        "/outcomes",
        summary="Load loan outcomes (all rows checked; any bad row: 422 and nothing stored)",
        response_model=None,
        responses={
            200: {"model": OutcomesStored, "description": "What the load changed"},
            **error_responses(400, 401, 403, 404, 413, 415, 422),
        },
        openapi_extra=_REQUEST_DOC,
    )
    async def post_outcomes(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        require_json(request)
        parsed = _parse(await request.body(), runtime.config.model.outcomes.max_batch_size)
        return json_response(await run_in_threadpool(_store, runtime, parsed))

    @router.get(
        "/performance",
        summary="Latest realized-performance summary, per model version",
        response_model=None,
        responses={200: {"model": PerformanceSummary}, **error_responses(404)},
    )
    async def get_performance(request: Request) -> Response:
        runtime = runtime_of(request)
        return json_response(await run_in_threadpool(_summary, runtime))

    return router
