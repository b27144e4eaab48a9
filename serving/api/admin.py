"""Admin routes (bearer token; absent when no token is configured): reload, promote, rollback."""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import registry
from serving.api.deps import Runtime, body_doc, json_body, require_admin, require_json
from serving.errors import ConflictError, InvalidInputError, NoModelError, error_responses, json_response, problem
from serving.schemas import AdminActionOut, PromoteRequest, ReloadOut, RollbackRequest
from serving.state import Attempt

log = logging.getLogger(__name__)


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])
    auth_errors = error_responses(401, 403, 404)

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
        summary="Promote a version to the serving alias through the promotion gates",
        response_model=None,
        responses={200: {"model": AdminActionOut}, **auth_errors, **error_responses(400, 413, 415, 422, 503)},
        openapi_extra=body_doc("PromoteRequest"),
    )
    async def promote_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        require_json(request)
        body: PromoteRequest = json_body(await request.body(), PromoteRequest)
        from pipelines.promote import promote

        call = functools.partial(
            promote, runtime.config, runtime.settings, reason=body.reason, force=body.force, version=body.version
        )
        return await _alias_action(runtime, call)

    @router.post(
        "/rollback",
        summary="Move the serving alias back (to the previous holder, or a named version)",
        response_model=None,
        responses={200: {"model": AdminActionOut}, **auth_errors, **error_responses(400, 413, 415, 422, 503)},
        openapi_extra=body_doc("RollbackRequest"),
    )
    async def rollback_version(request: Request, runtime: Annotated[Runtime, Depends(require_admin)]) -> Response:
        require_json(request)
        body: RollbackRequest = json_body(await request.body(), RollbackRequest)
        from pipelines.rollback import rollback

        call = functools.partial(rollback, runtime.config, runtime.settings, version=body.version, reason=body.reason)
        return await _alias_action(runtime, call)

    return router


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


async def _alias_action(runtime: Runtime, call: Any) -> Response:
    """Run a promote/rollback job in a worker thread, then follow the alias at once."""
    try:
        event = await run_in_threadpool(call)
    except registry.RegistryError as exc:  # PromotionRefused, RollbackRefused: the gates' text
        raise InvalidInputError([problem(["body", "version"], str(exc), type(exc).__name__)]) from None
    except Exception as exc:
        log.exception("admin alias action failed")
        raise NoModelError(f"registry unavailable: {str(exc)[:300]}") from None
    attempt = await run_in_threadpool(runtime.holder.refresh, trigger="admin")
    return json_response({"event": asdict(event), "reload": attempt.to_json()})
