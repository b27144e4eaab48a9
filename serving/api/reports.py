"""Model documentation routes: each registered version's validation report (public, like /v1/registry)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import registry
from serving.api.deps import runtime_of
from serving.errors import NoModelError, NotFoundError, error_responses

REPORT_TAG = registry.VALIDATION_REPORT_TAG  # set at registration by pipelines/validation_report.py


def report_path(version: str) -> str:
    return f"/v1/registry/versions/{version}/validation_report"


def reports_router() -> APIRouter:
    router = APIRouter(prefix="/v1/registry", tags=["registry"])

    @router.get(
        "/versions/{version}/validation_report",
        summary="A version's validation report (SR 11-7 style), written at its registration",
        response_model=None,
        responses={200: {"content": {"text/html": {}}, "description": "The report"}, **error_responses(404, 422, 503)},
    )
    async def validation_report(
        request: Request, version: Annotated[str, Path(pattern=r"^[1-9][0-9]{0,8}$", description="Version number")]
    ) -> Response:
        runtime = runtime_of(request)
        name = runtime.config.model.registry.model_name

        def read() -> str:
            try:
                client = registry.connect(runtime.settings, runtime.config.root)
                found = registry.get_version(client, name, version)
            except Exception as exc:
                raise NoModelError(f"registry unreachable: {str(exc)[:300]}") from None
            if found is None or REPORT_TAG not in found.tags or not found.run_id:
                raise NotFoundError(f"version {version} of {name!r} has no validation report")
            return registry.run_artifact_text(client, found.run_id, found.tags[REPORT_TAG])

        page = await run_in_threadpool(read)
        return Response(page, media_type="text/html; charset=utf-8")

    return router
