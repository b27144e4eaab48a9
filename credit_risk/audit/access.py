"""The access log: who looked at, replayed or printed which decision, one JSON line each.

Decisions hold personal data: every read through the API is recorded with the caller's token
name and role, what was asked (a request id or an applicant query) and the answer's status.
Each line is written with one ``write`` on a file opened for appending, so lines from several
workers never interleave. The lines name request and applicant ids: retention drops those older
than ``prediction_log.retention_days`` (:func:`prune_access_log`), rewriting the file under an
exclusive ``flock`` that every writer takes shared.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_risk.config import ProjectConfig, Settings
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.private_files import atomic_write, private_descriptor, private_dir


def audit_dir(config: ProjectConfig, settings: Settings) -> Path:
    return resolve_log_dir(config, settings).parent / "audit"


def index_path(config: ProjectConfig, settings: Settings) -> Path:
    configured = config.model.audit.index_path
    return config.resolve(configured) if configured else audit_dir(config, settings) / "decisions.sqlite"


def access_log_path(config: ProjectConfig, settings: Settings) -> Path:
    configured = config.model.audit.access_log
    return config.resolve(configured) if configured else audit_dir(config, settings) / "access.jsonl"


def _open_current(path: Path) -> int:
    """The access log opened for appending, share-locked, and still the file at ``path`` (not one that
    retention has just replaced)."""
    while True:
        fd = private_descriptor(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def prune_access_log(path: Path, *, before: datetime) -> int:
    """Retention: drop the lines of accesses made before ``before``; returns how many were dropped."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # writers wait; they then see the new file and append to it
        with os.fdopen(os.dup(fd), "rb") as handle:
            lines = handle.readlines()
        kept = [line for line in lines if not _made_before(line, before)]
        if len(kept) == len(lines):
            return 0
        atomic_write(path, lambda handle: handle.write(b"".join(kept)))
        return len(lines) - len(kept)
    finally:
        os.close(fd)


def _made_before(line: bytes, before: datetime) -> bool:
    try:
        return datetime.fromisoformat(json.loads(line)["at"]) < before
    except (ValueError, KeyError, TypeError):  # a damaged line: its age is unknown, it stays
        return False


class AccessLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
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
            fd = _open_current(self.path)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)  # and its shared lock

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
