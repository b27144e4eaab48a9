"""Probes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from credit_risk import roles
from serving.api.deps import ANY_ROLE, ROLE_HEADER, Caller, Runtime, require_any_role, runtime_of
from serving.errors import json_response
from serving.schemas import Health, Readiness


def not_ready_reason(runtime: Runtime) -> str | None:
    """No model, draining, or a prediction log that cannot take records (write errors, queue past its mark)."""
    reason = runtime.holder.not_ready_reason()
    if reason is None and runtime.writer is not None:
        reason = runtime.writer.health_problem()
    return reason


def probe_router() -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/health", summary="Liveness", response_model=None, responses={200: {"model": Health}})
    async def health() -> Response:
        return json_response({"status": "ok"})

    @router.get(
        "/ready",
        summary="Readiness: a model is loaded and warm, the prediction log is healthy, the service is not draining",
        response_model=None,
        responses={200: {"model": Readiness}, 503: {"model": Readiness, "description": "Not ready, with the reason"}},
    )
    async def ready(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        reason = "starting" if runtime is None else not_ready_reason(runtime)
        if reason is not None:
            return json_response({"ready": False, "reason": reason}, 503)
        body = {"ready": True, "version": runtime.holder.served.version}
        refused = runtime.holder.refused_text()
        if refused is not None:
            body["refused"] = refused
        return json_response(body)

    @router.get(
        "/v1/me",
        summary="Whose role token this is: its name, role and what the role may do (for the UI's sidebar)",
        response_model=None,
        openapi_extra={ROLE_HEADER: ANY_ROLE},
    )
    async def me(caller: Annotated[Caller, Depends(require_any_role)]) -> Response:
        permissions = sorted(roles.GRANTS[caller.role])
        return json_response(
            {
                "name": caller.name,
                "role": caller.role,
                "permissions": permissions,
                "description": roles.DESCRIPTIONS[caller.role],
            }
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_model=None,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
    )
    async def metrics(request: Request) -> Response:
        runtime = runtime_of(request)
        runtime.metrics.ready.set(0 if not_ready_reason(runtime) else 1)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
