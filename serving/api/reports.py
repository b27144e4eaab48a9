"""The registry, read-only and public: the versions, aliases and alias history, and each version's
validation report, only as registered (its digest and signature checked) and never able to run script.

Both reads are kept ``serving.registry_read_cache_seconds`` (:mod:`serving.read_cache`): a flood of
anonymous calls costs one registry read per version and period, not a worker thread each.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from credit_risk import lifecycle, registry
from serving.api.deps import Runtime, runtime_of
from serving.errors import ConflictError, MessageBody, NoModelError, NotFoundError, error_responses, json_response

REPORT_TAG = registry.VALIDATION_REPORT_TAG  # set at registration by pipelines/validation_report.py
# the page is shown as a document of its own: no script, no plugin, no form, a unique origin; no type sniffing
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
_VERSION = Annotated[str, Path(pattern=r"^[1-9][0-9]{0,8}$", description="Version number")]
_REFUSED = {
    409: {
        "model": MessageBody,
        "description": "The report does not match what was registered, or is not UTF-8 text: nothing of it is shown",
    }
}


def report_path(version: str) -> str:
    return f"/v1/registry/versions/{version}/validation_report"


def datetime_ms(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC).isoformat(timespec="seconds")


def _read_snapshot(runtime: Runtime) -> dict[str, Any]:
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


async def registry_snapshot(runtime: Runtime) -> dict[str, Any]:
    """``GET /v1/registry``'s body, read at most once per ``registry_read_cache_seconds``."""
    return await runtime.reads.get(("registry",), lambda: _read_snapshot(runtime))


def _read_report(runtime: Runtime, version: str) -> registry.VerifiedReport:
    name = runtime.config.model.registry.model_name
    try:
        client = registry.connect(runtime.settings, runtime.config.root)
        found = registry.get_version(client, name, version)
        if found is None or REPORT_TAG not in found.tags:
            raise NotFoundError(f"version {version} of {name!r} has no validation report")
        return registry.fetch_verified_report(client, found, signing_key=registry.signing_key(runtime.settings))
    except (registry.UnverifiedArtifactError, registry.UnreadableReportError) as exc:
        raise ConflictError(str(exc)) from None
    except NotFoundError:
        raise
    except Exception as exc:
        raise NoModelError(f"registry unreachable: {str(exc)[:300]}") from None


async def verified_report(runtime: Runtime, version: str) -> registry.VerifiedReport:
    """A version's report as registered. A version the registry view does not list is a 404 without a
    registry read, so guessing version numbers costs nothing."""
    listed = {v["version"]: v for v in (await registry_snapshot(runtime))["versions"]}
    name = runtime.config.model.registry.model_name
    if not (listed.get(version) or {}).get("validation_report"):
        raise NotFoundError(f"version {version} of {name!r} has no validation report")
    return await runtime.reads.get(("report", version), lambda: _read_report(runtime, version))


def reports_router() -> APIRouter:
    router = APIRouter(prefix="/v1/registry", tags=["registry"])

    @router.get(
        "/versions/{version}/validation_report",
        summary="A version's validation report (SR 11-7 style), as registered: a sandboxed page (no script)",
        response_model=None,
        responses={
            200: {"content": {"text/html": {}}, "description": "The report"},
            **error_responses(404, 422, 503),
            **_REFUSED,
        },
    )
    async def validation_report(request: Request, version: _VERSION) -> Response:
        report = await verified_report(runtime_of(request), version)
        return Response(report.page, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)

    @router.get(
        "/versions/{version}/validation_report/data",
        summary="The data a version's validation report was rendered from (as registered), for pages to show",
        response_model=None,
        responses={
            200: {"content": {"application/json": {}}, "description": "The report's data"},
            **error_responses(404, 422, 503),
            **_REFUSED,
        },
    )
    async def validation_report_data(request: Request, version: _VERSION) -> Response:
        report = await verified_report(runtime_of(request), version)
        return json_response(report.data, headers={"X-Content-Type-Options": "nosniff"})

    return router
