"""The service's OpenAPI document: request schemas from the served model's feature schema, and only
the routes this deployment answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from credit_risk.config import Settings, load_project_config
from serving.api.cases import BODIES as CASE_BODIES
from serving.api.deps import Runtime, hide_unavailable_routes
from serving.api.jobs import JobRequest
from serving.requests import RequestParser
from serving.schemas import PromoteRequest, RollbackRequest


def _leave_out_switched_off(document: dict[str, Any], settings: Settings) -> None:
    """Routes that answer 404 in this deployment (admin without a token) are not in its document."""
    off = set() if settings.admin_token else {"admin"}
    paths = document.get("paths", {})
    for path in list(paths):
        operations = {m: op for m, op in paths[path].items() if not off & set(op.get("tags", ()))}
        if operations:
            paths[path] = operations
        else:
            del paths[path]


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with request schemas from the served model's feature schema."""
    runtime: Runtime | None = getattr(app.state, "runtime", None)
    served = runtime.holder.served if runtime else None
    key = served.version if served else None
    if app.openapi_schema is not None and getattr(app.state, "openapi_version", "-") == key:
        return app.openapi_schema
    if served is not None:
        parser = served.parser
    else:
        config = runtime.config if runtime else load_project_config(Settings().config_dir)
        parser = RequestParser.for_schema(config.features, max_batch=config.model.serving.max_batch_size)
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _leave_out_switched_off(document, runtime.settings if runtime else Settings())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(parser.openapi_schemas())
    for model in (PromoteRequest, RollbackRequest, JobRequest, *CASE_BODIES):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    if runtime is not None:
        hide_unavailable_routes(document, runtime.settings)
    app.openapi_schema = document
    app.state.openapi_version = key
    return document
