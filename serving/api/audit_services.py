"""The audit routes' services: the decision index, the access log and verified versions, built on first use.

One :class:`AuditServices` per app (on ``app.state``), shared by the decision routes and the cases'
routes that show the decision behind a case.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request

from credit_risk import registry
from credit_risk.audit import access, replay
from credit_risk.audit.several import DecisionIndexes
from credit_risk.decision_log.paths import read_dirs
from serving.api.deps import Runtime
from serving.errors import NotFoundError


class AuditServices:
    """The decision index, the access log and a cache of verified versions, built on first use."""

    def __init__(self, runtime: Runtime) -> None:
        config, settings = runtime.config, runtime.settings
        self.index = DecisionIndexes(
            read_dirs(config, settings),
            access.index_path(config, settings),
            refresh_seconds=config.model.audit.refresh_seconds,
        )
        self.access = runtime.access
        key = settings.model_signing_key.get_secret_value() if settings.model_signing_key else None
        self.cache = replay.VersionCache(registry.connect(settings, config.root), config, signing_key=key)
        self.replay_lock = threading.Lock()


_services_lock = threading.Lock()


def audit_services(request: Request, runtime: Runtime) -> AuditServices:
    """The app's audit services, built by the first request that needs them."""
    with _services_lock:
        found = getattr(request.app.state, "audit_services", None)
        if found is None:
            found = AuditServices(runtime)
            request.app.state.audit_services = found
        return found


def find_decision(request: Request, runtime: Runtime, request_id: str) -> dict[str, Any] | None:
    """The logged decision with this request id, or None (blocking: call from a thread)."""
    return audit_services(request, runtime).index.find(request_id)


def lookup_decision(services: AuditServices, request_id: str) -> dict[str, Any]:
    """The logged decision with this request id; :class:`~serving.errors.NotFoundError` (404) when none."""
    record = services.index.find(request_id)
    if record is None:
        raise NotFoundError(f"no logged decision has request id {request_id!r}")
    return record
