"""What every route shares: the runtime the lifespan builds, request helpers and the admin check."""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credit_risk import roles
from credit_risk.audit import access
from credit_risk.audit.request_ids import MadeIds, RequestIdLedger
from credit_risk.config import ProjectConfig, Settings
from credit_risk.lifecycle import ledger
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
from serving.experiments import ExperimentFollower
from serving.metrics import ServiceMetrics
from serving.read_cache import ReadCache
from serving.requests import load_json
from serving.state import ModelHolder, Served

REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # a client's X-Request-ID, and the decision routes' id
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# a decision's id: a request id, or a batch row's derived from its batch's (``<batch id>-<row>``)
DECISION_ID_PATTERN = REQUEST_ID_PATTERN.removesuffix("$") + r"(?:-[0-9]{1,18})?$"
DECISION_ID_MAX = 128 + 19
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
    ids: RequestIdLedger | None = None  # every request id answered: one decision per id (None: no log kept)
    reads: ReadCache = field(default_factory=ReadCache)  # the public registry reads, kept briefly

    # the ledger's controls (stop switch, experiment, approvals) as this worker last read them, and who
    # wants to know when they change; refreshed at every registry poll and after this worker's own changes
    controls: ledger.Controls = field(default_factory=ledger.Controls)
    control_listeners: list[Callable[[ledger.Controls], None]] = field(default_factory=list)
    cases: Any = None  # the case store (credit_risk.cases.CaseStore), opened in the lifespan
    experiment: ExperimentFollower | None = None  # the ledger's running experiment, as this worker runs it
    _access: access.AccessLog | None = None

    @property
    def serving(self) -> Any:
        return self.config.model.serving

    @property
    def access(self) -> access.AccessLog:
        """The access log (who read or changed what), opened on first use."""
        if self._access is None:
            self._access = access.AccessLog(access.access_log_path(self.config, self.settings))
        return self._access

    def refresh_controls(self) -> ledger.Controls:
        """Read the ledger's controls now (blocking: call from a thread); tell the listeners of a change."""
        controls = ledger.read_controls(self.holder.client(), self.config.model.registry.model_name)
        if controls.sequence != self.controls.sequence or controls.latest != self.controls.latest:
            self.controls = controls
            for listener in self.control_listeners:
                listener(controls)
        return self.controls

    def record_refusal(self, *, actor: str, role: str, status: int, method: str, path: str) -> None:
        self.access.record(actor=actor, role=role, action="refused", status=status, method=method, path=path)


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


def is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in _JSON_TYPES


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        raise UnsupportedMediaTypeError(f"expected Content-Type application/json, got {content_type[:100]!r}")


_ids = MadeIds(os.urandom(32))  # a service without a ledger: its own key, for this process only


def request_id_from(given: str | None, made: MadeIds | None = None) -> str:
    """The client's request id when it is a valid one, else a new one (``made``: under the instance's key)."""
    return given if given and _REQUEST_ID.match(given) else (made or _ids).new()


# ------------------------------------------------------------------ roles

ROLE_HEADER = "x-required-role"  # on an operation in the OpenAPI document: the permission it needs

_bearer = HTTPBearer(
    auto_error=False,
    description="a role token: CREDIT_RISK_ADMIN_TOKEN, _AUDITOR_TOKEN, _REVIEWER_TOKEN or _APPROVER_TOKEN",
)


@dataclass(frozen=True)
class Caller:
    """Who called: the token's name and role, and the runtime.

    Attributes it lacks are the runtime's, so a route written for ``require_admin`` returning
    the runtime (``runtime.holder``, ``runtime.config``) works unchanged.
    """

    runtime: Runtime
    name: str
    role: str

    @property
    def actor(self) -> str:
        """How the ledger and the access log name the caller."""
        return f"{self.name} ({self.role})"

    def __getattr__(self, item: str) -> Any:
        return getattr(self.runtime, item)


def _refuse(request: Request, runtime: Runtime, error: Exception, *, status: int, actor: str, role: str) -> Exception:
    """A refused attempt is in the access log too (who tried what, and why it was refused)."""
    log_refusal = getattr(runtime, "record_refusal", None)
    if log_refusal is not None:
        log_refusal(actor=actor, role=role, status=status, method=request.method, path=request.url.path)
    return error


ANY_ROLE = "any"  # a route any configured role may call (``GET /v1/me``)


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None, needed: str) -> Caller:
    runtime = runtime_of(request)
    every = roles.role_tokens(runtime.settings)
    if not any(needed == ANY_ROLE or roles.grants(token.role, needed) for token in every):
        raise NotFoundError("Not Found")
    if credentials is None or not credentials.credentials:
        raise _refuse(
            request, runtime, UnauthorizedError("a bearer token is required"), status=401, actor="-", role="-"
        )
    given = credentials.credentials.encode("utf-8", "surrogateescape")
    # compare with every token, in constant time each, whatever matches first
    matches = [token for token in every if hmac.compare_digest(given, token.token.encode())]
    if not matches:
        raise _refuse(
            request, runtime, ForbiddenError("the bearer token is not valid"), status=403, actor="-", role="-"
        )
    token = matches[0]
    if needed != ANY_ROLE and not roles.grants(token.role, needed):
        raise _refuse(
            request,
            runtime,
            ForbiddenError(f"the {token.role} role may not do this: it needs the {needed} role"),
            status=403,
            actor=token.name,
            role=token.role,
        )
    caller = Caller(runtime=runtime, name=token.name, role=token.role)
    request.state.actor = caller.actor  # the admin routes record it in the ledger
    return caller


def require_role(needed: str) -> Any:
    """A dependency: the caller, when its bearer token grants ``needed`` (credit_risk/roles.py);
    404 when no configured token could (the routes do not exist), 401 without a token, 403 otherwise."""
    if needed not in roles.PERMISSIONS and needed != ANY_ROLE:
        raise ValueError(f"unknown permission {needed!r}")

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Caller:
        return _authenticate(request, credentials, needed)

    return dependency


require_admin = require_role("admin")  # promote, roll back, reload, outcomes, automation, experiments
require_auditor = require_role("auditor")  # decisions, notices, replay
require_reviewer = require_role("reviewer")  # cases and contests
require_approver = require_role("approver")  # promotion approvals
require_any_role = require_role(ANY_ROLE)  # who am I


def hide_unavailable_routes(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Drop from the OpenAPI document the operations whose role no configured token has
    (operations marked with ``x-required-role``, and every ``/v1/admin/`` one)."""
    paths = document.get("paths", {})
    for path in list(paths):
        for method in list(paths[path]):
            operation = paths[path][method]
            needed = operation.get(ROLE_HEADER) if isinstance(operation, dict) else None
            if needed is None and path.startswith("/v1/admin/"):
                needed = "admin"
            available = bool(roles.role_tokens(settings)) if needed == ANY_ROLE else None
            if needed is not None and not (available or roles.permission_available(settings, needed)):
                del paths[path][method]
        if not paths[path]:
            del paths[path]
    return document


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
