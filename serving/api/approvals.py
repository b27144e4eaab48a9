"""Promotion approvals: the pending requests (public, like ``/v1/registry``) and a second person's
decision on one (the ``approver`` role). The logic is :mod:`credit_risk.lifecycle.approvals`'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import lifecycle, registry
from credit_risk.lifecycle import approvals
from serving.api.deps import ROLE_HEADER, Caller, json_body, require_approver, require_json, runtime_of
from serving.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NoModelError,
    NotFoundError,
    error_responses,
    json_response,
    problem,
)

log = logging.getLogger(__name__)

_ID = Path(pattern=r"^apr-[0-9a-f]{12}$", description="The request's id (apr-...)")


class DecisionIn(BaseModel):
    """Why the request is approved or rejected (recorded in the ledger)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, examples=["validated: gates and the shadow report hold"])


async def _call(call: Callable[[], Any]) -> Any:
    """A lifecycle call in a thread: its refusals mapped to 403, 404, 409 and 422; the registry's failures 503."""
    try:
        return await run_in_threadpool(call)
    except approvals.SelfApprovalRefused as exc:
        raise ForbiddenError(str(exc)) from None
    except approvals.ApprovalNotFound as exc:
        raise NotFoundError(str(exc)) from None
    except approvals.ApprovalRefused as exc:
        raise ConflictError(str(exc)) from None
    except registry.RegistryError as exc:  # the gates no longer hold, the champion moved meanwhile
        raise InvalidInputError([problem(["body", "reason"], str(exc), type(exc).__name__)]) from None
    except Exception as exc:
        log.exception("approval action failed")
        raise NoModelError(f"registry unavailable: {str(exc)[:300]}") from None


def approvals_router() -> APIRouter:
    router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
    decide_errors = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    approver_only = {ROLE_HEADER: "approver", "requestBody": _body_doc()}

    @router.get(
        "",
        summary="Promotion requests and their state (pending, approved, rejected, expired, failed)",
        response_model=None,
        responses={200: {"description": "Newest first"}, **error_responses(503)},
    )
    async def list_requests(request: Request) -> Response:
        runtime = runtime_of(request)
        name = runtime.config.model.registry.model_name

        def read() -> list[approvals.Approval]:
            return approvals.list_approvals(registry.connect(runtime.settings, runtime.config.root), name)

        found = await _call(read)
        return json_response(
            {
                "required": approvals.approvals_required(runtime.config, runtime.settings),
                "approvals": [a.to_json() for a in found],
            }
        )

    @router.post(
        "/{approval_id}/approve",
        summary="Approve another person's promotion request: the gates run again and the alias moves",
        response_model=None,
        responses={200: {"description": "The approval and the alias move"}, **decide_errors},
        openapi_extra=approver_only,
    )
    async def approve(
        request: Request, approval_id: Annotated[str, _ID], caller: Annotated[Caller, Depends(require_approver)]
    ) -> Response:
        body = await _decision(request)
        runtime = caller.runtime

        def act() -> tuple[approvals.Approval, lifecycle.PromotionReport]:
            return approvals.approve(
                runtime.config, runtime.settings, approval_id, actor=caller.actor, reason=body.reason
            )

        approval, report = await _call(act)
        attempt = await run_in_threadpool(runtime.holder.refresh, trigger="admin")
        await run_in_threadpool(runtime.refresh_controls)
        served = runtime.holder.served
        return json_response(
            {
                "approval": approval.to_json(),
                "event": asdict(report.event) if report.event else None,
                "gates": [gate.to_json() for gate in report.gates],
                "reload": attempt.to_json(),
                "served_version": served.version if served else None,
            }
        )

    @router.post(
        "/{approval_id}/reject",
        summary="Reject another person's promotion request, with a reason; nothing moves",
        response_model=None,
        responses={200: {"description": "The rejected request"}, **decide_errors},
        openapi_extra=approver_only,
    )
    async def reject(
        request: Request, approval_id: Annotated[str, _ID], caller: Annotated[Caller, Depends(require_approver)]
    ) -> Response:
        body = await _decision(request)
        runtime = caller.runtime

        def act() -> approvals.Approval:
            return approvals.reject(
                runtime.config, runtime.settings, approval_id, actor=caller.actor, reason=body.reason
            )

        approval = await _call(act)
        await run_in_threadpool(runtime.refresh_controls)
        return json_response({"approval": approval.to_json()})

    return router


async def _decision(request: Request) -> DecisionIn:
    require_json(request)
    return json_body(await request.body(), DecisionIn)


def _body_doc() -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": DecisionIn.model_json_schema()}},
    }
