"""What every route shares: the runtime the lifespan builds, request helpers and the admin check."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credit_risk.config import ProjectConfig, Settings
from serving import prediction_log
from serving.errors import (
    ForbiddenError,
    InvalidInputError,
    NoModelError,
    NotFoundError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    problems_from_pydantic,
)
from serving.metrics import ServiceMetrics
from serving.requests import load_json
from serving.state import ModelHolder, Served

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_JSON_TYPES = ("application/json",)


@dataclass
class Runtime:
    """Everything the routes need, created in the lifespan."""

    config: ProjectConfig
    settings: Settings
    holder: ModelHolder
    metrics: ServiceMetrics
    writer: prediction_log.PredictionLogWriter | None
    # when a decision is made (scored_at); the outcome simulator sets a simulated clock in-process
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def serving(self) -> Any:
        return self.config.model.serving


# ------------------------------------------------------------------ request helpers


def runtime_of(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise NoModelError("the service is starting")
    return runtime


def served_of(runtime: Runtime) -> Served:
    served = runtime.holder.served
    if served is None:
        raise NoModelError(runtime.holder.not_ready_reason() or "no model loaded")
    return served


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in _JSON_TYPES:
        raise UnsupportedMediaTypeError(f"expected Content-Type application/json, got {content_type[:100]!r}")


def request_id_of(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex


_bearer = HTTPBearer(auto_error=False, description="CREDIT_RISK_ADMIN_TOKEN")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Runtime:
    """Bearer token, compared in constant time; no token configured: the admin routes do not exist."""
    runtime = runtime_of(request)
    token = runtime.settings.admin_token
    if not token:
        raise NotFoundError("Not Found")
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("a bearer token is required")
    if not hmac.compare_digest(credentials.credentials.encode("utf-8", "surrogateescape"), token.encode()):
        raise ForbiddenError("the bearer token is not valid")
    return runtime


def json_body(request_body: bytes, model: Any) -> Any:
    data = load_json(request_body)
    try:
        return model.model_validate(data)
    except Exception as exc:  # pydantic ValidationError
        if hasattr(exc, "errors"):
            raise InvalidInputError(
                problems_from_pydantic(exc.errors(include_url=False, include_input=False))
            ) from None
        raise


def body_doc(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }
