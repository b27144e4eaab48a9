"""Opening cases: for a decision as it is answered, and again from the decision log's files.

A case is opened for every decision in ``review.decisions``; its key is the decision's request id
(a unique constraint), so opening it twice is a no-op. The service opens it right after the
decision's record is fsync'd to the log's write-ahead file; :meth:`CaseIntake.reconcile` re-derives
cases from the log's finished files at start and periodically, insert-if-absent, so a crash between
the answer and the insert loses nothing and doubles nothing (the log is the durable source; the
store needs no fsync of its own for that).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from credit_risk.cases import policy
from credit_risk.cases.database import CaseDatabase, to_datetime, utc
from credit_risk.cases.models import cases, log_files
from credit_risk.config import ReviewConfig
from credit_risk.decision_log.paths import PARTITION
from credit_risk.decision_log.reader import log_files as finished_log_files
from credit_risk.decision_log.reader import read_file_rows
from credit_risk.decision_log.record import log_columns

log = logging.getLogger(__name__)

SYSTEM = "system"  # the actor of what the service does itself (opening a case)
_LOG_COLUMNS = log_columns(  # the log's columns a case is opened from (a name that is no column fails at import)
    "request_id",
    "applicant_id",
    "scored_at",
    "model_name",
    "model_version",
    "probability",
    "score",
    "risk_band",
    "decision",
    "decision_policy_version",
    "reasons",
    "model_decision",
).names


class CaseIntake(CaseDatabase):
    """A case database that opens cases: from records as they are answered, and from the log's files."""

    def __init__(self, url: str, config: ReviewConfig, *, log_dir: Path | None = None) -> None:
        super().__init__(url)
        self.config = config
        self.log_dir = Path(log_dir) if log_dir else None
        self._recent_from: date | None = None  # after a first full pass, reconcile reads only recent dates

    def case_row(self, record: dict[str, Any], *, kind: str = "referral", now: datetime) -> dict[str, Any]:
        """A case's row from a decision's log record (as logged, or as handed to the log)."""
        scored_at = utc(to_datetime(record["scored_at"]))
        assert scored_at is not None
        request_id = str(record["request_id"])
        return {
            "case_key": request_id if kind == "referral" else f"contest:{request_id}",
            "kind": kind,
            "request_id": request_id,
            "applicant_id": record.get("applicant_id"),
            "model_name": record.get("model_name"),
            "model_version": None if record.get("model_version") is None else str(record["model_version"]),
            "policy_version": record.get("decision_policy_version"),
            "probability": record.get("probability"),
            "score": record.get("score"),
            "risk_band": record.get("risk_band"),
            "decision": record.get("decision"),
            "model_decision": record.get("model_decision") or record.get("decision"),
            "reasons": policy.model_reasons(record.get("reasons")),
            "scored_at": scored_at,
            "opened_at": now,
            "due_at": (scored_at if kind == "referral" else now) + timedelta(hours=self.config.sla_hours),
            "state": "open",
        }

    def open_cases(
        self, records: Sequence[dict[str, Any]], *, source: str, now: datetime | None = None
    ) -> dict[str, int]:
        """Open a case for each record whose decision opens one, unless it has one; request id -> case id."""
        now = now or datetime.now(UTC)
        rows = [self.case_row(r, now=now) for r in records if policy.opens_case(r.get("decision"), self.config)]
        if not rows:
            return {}
        with self._writing() as connection:
            return self._insert_absent(connection, rows, source=source, now=now)[0]

    def _insert_absent(
        self, connection: Connection, rows: list[dict[str, Any]], *, source: str, now: datetime
    ) -> tuple[dict[str, int], int]:
        """Insert the rows whose key is absent (several workers may race: the unique key settles it);
        returns request id -> case id, and how many were inserted here."""
        keys = [row["case_key"] for row in rows]
        found = dict(connection.execute(select(cases.c.case_key, cases.c.id).where(cases.c.case_key.in_(keys))).all())
        inserted_here = 0
        for row in rows:
            if row["case_key"] in found:
                continue
            inserted = self._insert_case(connection, row)
            if inserted is None:  # another worker opened it meanwhile
                inserted = connection.execute(
                    select(cases.c.id).where(cases.c.case_key == row["case_key"])
                ).scalar_one()
            else:
                self._event(connection, inserted, SYSTEM, "opened", {"source": source}, now)
                inserted_here += 1
            found[row["case_key"]] = inserted
        ids = {row["request_id"]: found[row["case_key"]] for row in rows if row["kind"] == "referral"}
        return ids, inserted_here

    def reconcile(self, log_dir: Path | None = None, *, now: datetime | None = None) -> int:
        """Open the cases of the log's files not read yet (insert-if-absent); returns the cases opened.

        The first pass of a process reads every date; later ones only the last two (a file appears
        under its decisions' date, and a writer's leftovers are turned into files at its start,
        before that process's first pass)."""
        folder = Path(log_dir) if log_dir else self.log_dir
        if folder is None:
            return 0
        since = self._recent_from
        with self.engine.connect() as connection:
            query = select(log_files.c.path)
            if since is not None:
                query = query.where(log_files.c.path >= f"{PARTITION}={since.isoformat()}")
            seen = set(connection.execute(query).scalars())
        started = now or datetime.now(UTC)
        opened = 0
        for name in finished_log_files(folder, since=since):
            if name in seen:
                continue
            try:
                referred = read_file_rows(folder / name, _LOG_COLUMNS, decisions=self.config.decisions)
            except FileNotFoundError:  # removed by retention meanwhile
                continue
            case_rows = [self.case_row(row, now=started) for row in referred]
            with self._writing() as connection:
                if case_rows:
                    opened += self._insert_absent(connection, case_rows, source="log", now=started)[1]
                connection.execute(
                    self._insert(log_files)
                    .values(path=name, read_at=started, cases=len(case_rows))
                    .on_conflict_do_nothing(index_elements=["path"])
                )
        self._recent_from = (started - timedelta(days=1)).date()
        if opened:
            log.info("cases: %d opened from the decision log (not opened when answered)", opened)
        return opened
