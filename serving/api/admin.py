"""Admin routes (bearer token; absent when no token is configured): reload, promote, rollback.

Promotion and rollback are :mod:`credit_risk.lifecycle`'s: the gates score a
verified download of each version as plain data (no code from the artifact
runs in the service), and every move is recorded in the alias history with
the caller's identity before it happens. A move is answered 2xx only when the
service then serves the new version.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import lifecycle, registry
from credit_risk.lifecycle import approvals
from credit_risk.schema import DataValidationError
from serving.api.deps import Runtime, body_doc, json_body, require_admin, require_json
from serving.errors import ConflictError, InvalidInputError, NoModelError, error_responses, json_response, problem
from serving.schemas import AdminActionOut, PromoteRequest, PromotionCheckOut, ReloadOut, RollbackRequest
from serving.state import Attempt

log = logging.getLogger(__name__)

Body = TypeVar("Body", bound=BaseModel)

# Who asked, for the alias history: the authentication dependency may name the caller in
# ``request.state.actor``; otherwise the one admin token is the identity.
DEFAULT_ACTOR = "api:CREDIT_RISK_ADMIN_TOKEN"


def actor_of(request: Request) -> str:
    return str(getattr(request.state, "actor", None) or DEFAULT_ACTOR)


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])
    auth_errors = error_responses(401, 403, 404)
    move_errors = error_responses(400, 409, 413, 415, 422, 503)

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
        summary="Promote a version to the serving alias through the promotion gates (or dry-run them)",
        response_model=None,
        responses={
            200: {"model": AdminActionOut | PromotionCheckOut},
            202: {"description": "A pending approval (promotion.require_approval): a second person decides"},
            **auth_errors,
            **move_errors,
        },
        openapi_extra=body_doc("PromoteRequest"),
    )
    async def promote_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        body = await _read(request, PromoteRequest)
        call = _lifecycle_call(
            lifecycle.promote,
            runtime,
            request,
            reason=body.reason,
            force=body.force,
            version=body.version,
            dry_run=body.dry_run,
        )
        if body.dry_run:
            report = await _run(call)
            return json_response(report.to_json())
        if approvals.approvals_required(runtime.config, runtime.settings):
            # a second person approves it (POST /v1/approvals/{id}/approve) before the alias moves
            request_call = _lifecycle_call(
                approvals.request_promotion,
                runtime,
                request,
                reason=body.reason,
                force=body.force,
                version=body.version,
            )
            pending = await _run(request_call)
            await run_in_threadpool(runtime.refresh_controls)
            return json_response({"approval": pending.to_json()}, 202)
        return await _alias_action(runtime, call)

    @router.post(
        "/rollback",
        summary="Move the serving alias back (undo its last move, or to a version that held it before)",
        response_model=None,
        responses={200: {"model": AdminActionOut}, **auth_errors, **move_errors},
        openapi_extra=body_doc("RollbackRequest"),
    )
    async def rollback_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        body = await _read(request, RollbackRequest)
        call = _lifecycle_call(lifecycle.rollback, runtime, request, version=body.version, reason=body.reason)
        return await _alias_action(runtime, call)

    return router


async def _read(request: Request, model: type[Body]) -> Body:
    require_json(request)
    return json_body(await request.body(), model)


def _lifecycle_call(
    action: Callable[..., Any], runtime: Runtime, request: Request, **options: Any
) -> Callable[[], Any]:
    """``action`` (promote or rollback) on this deployment's configuration, recorded as the caller's."""
    return functools.partial(action, runtime.config, runtime.settings, actor=actor_of(request), **options)


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


async def _run(call: Callable[[], Any]) -> Any:
    """A lifecycle call in a worker thread; its refusals are 422 naming why, the registry's failures 503."""
    try:
        return await run_in_threadpool(call)
    except (registry.RegistryError, DataValidationError) as exc:  # PromotionRefused, RollbackRefused: the gates' text
        raise InvalidInputError([problem(["body", "version"], str(exc), type(exc).__name__)]) from None
    except Exception as exc:
        log.exception("admin alias action failed")
        raise NoModelError(f"registry unavailable: {str(exc)[:300]}") from None


async def _alias_action(runtime: Runtime, call: Callable[[], Any]) -> Response:
    """Move the alias (promote or rollback), then follow it at once.

    2xx only when the service then serves the version the alias moved to; a
    reload refused or failed is 409, a registry that cannot be asked 503, each
    body holding the recorded event and the reload attempt.
    """
    try:
        result = await _run(call)
    finally:
        runtime.reads.clear()  # the alias (and its history) may have moved: the next registry read shows it
    event = result.event if isinstance(result, lifecycle.PromotionReport) else result
    attempt = await run_in_threadpool(runtime.holder.refresh, trigger="admin")
    served = runtime.holder.served
    body: dict[str, Any] = {
        "event": asdict(event),
        "reload": attempt.to_json(),
        "served_version": served.version if served else None,
    }
    if isinstance(result, lifecycle.PromotionReport):
        body["gates"] = [gate.to_json() for gate in result.gates]
    if served is not None and served.version == event.to_version:
        return json_response(body)
    moved = f"the alias moved to version {event.to_version} (history #{event.sequence})"
    if attempt.outcome == "registry_error":
        exc: Exception = NoModelError(f"{moved}, but the registry could not be asked to reload: {attempt.error}")
    else:
        still = f"version {served.version}" if served else "nothing"
        exc = ConflictError(
            f"{moved}, but the service did not load it ({attempt.outcome}: {attempt.error or 'not followed'}); "
            f"it still serves {still}"
        )
    exc.extra = body  # type: ignore[attr-defined]
    raise exc
