"""Several log directories (``prediction_log.read_directories``) looked up as one log: an index each.

Each directory keeps its own index (:class:`~credit_risk.audit.index.DecisionIndex`, a SQLite file and
its lookup copies, named after the directory); a lookup asks them in the configured order, an
applicant's page merges theirs newest first. With one directory this is that directory's index alone.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_risk.audit.index import DecisionIndex


def index_path_for(base: Path, log_dir: Path, *, several: bool) -> Path:
    """``base`` for a single directory; else ``<stem>-<digest of the directory>.sqlite`` beside it."""
    if not several:
        return base
    digest = hashlib.sha256(str(Path(log_dir).resolve()).encode()).hexdigest()[:12]
    return base.with_name(f"{base.stem}-{digest}{base.suffix}")


def _newest_first(record: dict[str, Any]) -> float:
    moment = record.get("scored_at")
    if isinstance(moment, datetime):
        return -(moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return 0.0


class DecisionIndexes:
    """The indexes of every directory the readers read, answering as :class:`DecisionIndex` does."""

    def __init__(self, log_dirs: list[Path], index_path: Path, *, refresh_seconds: float = 2.0) -> None:
        several = len(log_dirs) > 1
        self.indexes = [
            DecisionIndex(folder, index_path_for(index_path, folder, several=several), refresh_seconds=refresh_seconds)
            for folder in log_dirs
        ]

    def close(self) -> None:
        for index in self.indexes:
            index.close()

    def refresh(self) -> int:
        return sum(index.refresh() for index in self.indexes)

    def count(self) -> int:
        return sum(index.count() for index in self.indexes)

    def find(self, request_id: str) -> dict[str, Any] | None:
        for index in self.indexes:
            found = index.find(request_id)
            if found is not None:
                return found
        return None

    def by_applicant(
        self, applicant_id: str, *, start: datetime, end: datetime, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        if len(self.indexes) == 1:
            return self.indexes[0].by_applicant(applicant_id, start=start, end=end, limit=limit, offset=offset)
        records: list[dict[str, Any]] = []
        total = 0
        for index in self.indexes:  # each index's newest offset + limit: enough for the merged page
            mine, count = index.by_applicant(applicant_id, start=start, end=end, limit=offset + limit, offset=0)
            records.extend(mine)
            total += count
        records.sort(key=_newest_first)
        return records[offset : offset + limit], total
