"""The access log: who looked at, replayed or printed which decision, one JSON line each.

Decisions hold personal data: every read through the API is recorded with the caller's token
name and role, what was asked (a request id or an applicant query) and the answer's status.
Each line is written with one ``write`` on a file opened for appending, so lines from several
workers never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_risk.config import ProjectConfig, Settings
from credit_risk.decision_log.paths import resolve_log_dir


def audit_dir(config: ProjectConfig, settings: Settings) -> Path:
    return resolve_log_dir(config, settings).parent / "audit"


def index_path(config: ProjectConfig, settings: Settings) -> Path:
    configured = config.model.audit.index_path
    return config.resolve(configured) if configured else audit_dir(config, settings) / "decisions.sqlite"


def access_log_path(config: ProjectConfig, settings: Settings) -> Path:
    configured = config.model.audit.access_log
    return config.resolve(configured) if configured else audit_dir(config, settings) / "access.jsonl"


class AccessLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, *, actor: str, role: str, action: str, status: int, **what: Any) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "actor": actor,
            "role": role,
            "action": action,
            "status": status,
            **what,
        }
        line = (json.dumps(entry, default=str, sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
