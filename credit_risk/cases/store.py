"""The case store: cases in a real database (SQLite beside the log, or PostgreSQL), through SQLAlchemy.

A case is opened for every decision in ``review.decisions``; its key is the decision's request id
(a unique constraint), so opening it twice is a no-op. The service opens it right after the
decision's record is fsync'd to the log's write-ahead file; :meth:`CaseStore.reconcile` re-derives
cases from the log's finished files at start and periodically, insert-if-absent, so a crash between
the answer and the insert loses nothing and doubles nothing (the log is the durable source; the
store needs no fsync of its own for that).

Claims and decisions are conditional updates (``UPDATE ... WHERE state/claim matches``) whose
row count says who won: two reviewers claiming one case at once, on any worker or instance,
get exactly one claim.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, and_, create_engine, event, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from credit_risk.cases import policy
from credit_risk.cases.models import case_events, cases, log_files
from credit_risk.config import ReviewConfig
from credit_risk.decision_log.paths import PARTITION
from credit_risk.decision_log.reader import log_files as finished_log_files
from credit_risk.decision_log.reader import read_file_rows

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "credit_risk_cases_version"  # not alembic_version: the database may be shared (MLflow's)
SYSTEM = "system"  # the actor of what the service does itself (opening a case)
ACTIVE = ("open", "claimed")
_LOG_COLUMNS = [
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
]
_PG_LOCK = 7_162_026  # the advisory lock that serialises migrations of one PostgreSQL database


class CaseNotFoundError(LookupError):
    """No case has this id."""


class CaseConflictError(RuntimeError):
    """The case is in a state that refuses the action (claimed by another reviewer, decided)."""

    def __init__(self, message: str, case: dict[str, Any]) -> None:
        super().__init__(message)
        self.case = case


def default_path(log_dir: Path) -> Path:
    """The default store's file: SQLite beside the prediction log, ``<log dir>/../cases/cases.sqlite``."""
    return Path(log_dir).resolve().parent / "cases" / "cases.sqlite"


def default_url(log_dir: Path) -> str:
    return f"sqlite:///{default_path(log_dir)}"


def utc(moment: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite hands back naive times, stored in UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class QueuePage:
    cases: list[dict[str, Any]]
    total: int


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.isolation_level = None  # the driver opens no transactions itself: _sqlite_begin does
    cursor = connection.cursor()
    cursor.execute("pragma journal_mode=wal")  # readers never wait for a writer; several workers share the file
    cursor.execute("pragma synchronous=normal")  # survives kill -9; the log re-derives what a power cut loses
    cursor.execute("pragma busy_timeout=30000")
    cursor.execute("pragma foreign_keys=on")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # a writing transaction takes SQLite's write lock at BEGIN: one that reads then writes never meets
    # a snapshot another writer has moved on from (SQLITE_BUSY_SNAPSHOT), it waits its turn instead
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("writes") else "BEGIN")


class CaseStore:
    """Cases of one deployment. Thread-safe (a connection pool); every method blocks: call off the loop."""

    def __init__(self, url: str, config: ReviewConfig, *, log_dir: Path | None = None) -> None:
        self.url = url
        self.config = config
        self.log_dir = Path(log_dir) if log_dir else None
        self._recent_from: date | None = None  # after a first full pass, reconcile reads only recent dates
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            database = url.split(":///", 1)[1] if ":///" in url else ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            self._lock_path = Path(database + ".migrate.lock") if database else None
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            self._lock_path = None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction that writes: committed at the end, rolled back on an error."""
        with self.engine.connect() as connection:
            connection.execution_options(writes=True)
            with connection.begin():
                yield connection

    # ------------------------------------------------------------ schema

    def migrate(self) -> None:
        """Bring the schema to the newest migration; several workers starting at once migrate once."""
        with self._migration_lock(), self.engine.connect() as connection:
            connection.execution_options(writes=True)
            if not self.sqlite:
                connection.execute(text("select pg_advisory_lock(:key)"), {"key": _PG_LOCK})
            try:
                alembic = AlembicConfig()
                alembic.set_main_option("script_location", str(MIGRATIONS))
                alembic.attributes["connection"] = connection
                alembic.attributes["version_table"] = VERSION_TABLE
                command.upgrade(alembic, "head")
                connection.commit()
            finally:
                if not self.sqlite:
                    connection.execute(text("select pg_advisory_unlock(:key)"), {"key": _PG_LOCK})
                    connection.commit()

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------ opening cases

    def case_row(self, record: dict[str, Any], *, kind: str = "referral", now: datetime) -> dict[str, Any]:
        """A case's row from a decision's log record (as logged, or as handed to the log)."""
        scored_at = utc(_moment(record["scored_at"]))
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
            inserted = connection.execute(
                self._insert(cases)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["case_key"])
                .returning(cases.c.id)
            ).scalar()
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

    def _insert(self, table: Any) -> Any:
        return sqlite.insert(table) if self.sqlite else postgresql.insert(table)

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

    # ------------------------------------------------------------ reading

    def queue(
        self,
        *,
        state: str | None = None,
        band: str | None = None,
        overdue: bool | None = None,
        page: int = 1,
        page_size: int = 50,
        now: datetime | None = None,
    ) -> QueuePage:
        """Cases, oldest due first: the active ones (open, claimed) unless a state is asked for."""
        now = now or datetime.now(UTC)
        wanted = [cases.c.state == state] if state else [cases.c.state.in_(ACTIVE)]
        if band:
            wanted.append(cases.c.risk_band == band)
        if overdue is True:
            wanted += [cases.c.due_at < now, cases.c.state.in_(ACTIVE)]
        elif overdue is False:
            wanted.append(or_(cases.c.due_at >= now, cases.c.state.not_in(ACTIVE)))
        condition = and_(*wanted)
        with self.engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(cases).where(condition)).scalar_one()
            rows = connection.execute(
                select(cases)
                .where(condition)
                .order_by(cases.c.due_at, cases.c.id)
                .limit(page_size)
                .offset((page - 1) * page_size)
            ).mappings()
            return QueuePage([self._public(dict(row), now) for row in rows], int(total))

    def get(self, case_id: int, *, now: datetime | None = None) -> dict[str, Any]:
        """One case with its full history; :class:`CaseNotFoundError` when there is none."""
        with self.engine.connect() as connection:
            return self._read(connection, case_id, now or datetime.now(UTC))

    def for_decision(self, request_id: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """A decision's cases (its referral, its contest), oldest first, with their histories."""
        now = now or datetime.now(UTC)
        with self.engine.connect() as connection:
            ids = connection.execute(
                select(cases.c.id).where(cases.c.request_id == request_id).order_by(cases.c.id)
            ).scalars()
            return [self._read(connection, case_id, now) for case_id in list(ids)]

    def _read(self, connection: Connection, case_id: int, now: datetime) -> dict[str, Any]:
        row = connection.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            raise CaseNotFoundError(f"no case has id {case_id}")
        body = self._public(dict(row), now)
        history = connection.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        ).mappings()
        body["history"] = [
            {"at": iso(e["at"]), "actor": e["actor"], "action": e["action"], **dict(e["detail"] or {})} for e in history
        ]
        return body

    def _public(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        """A case as the API shows it: times in ISO UTC, overdue computed, a lapsed claim shown as open."""
        due = utc(row["due_at"])
        expires = utc(row["claim_expires_at"])
        state = row["state"]
        claimed_by = row["claimed_by"]
        if state == "claimed" and expires is not None and expires < now:
            state, claimed_by, expires = "open", None, None  # a lapsed claim: anyone may take it
        return {
            "id": row["id"],
            "kind": row["kind"],
            "request_id": row["request_id"],
            "applicant_id": row["applicant_id"],
            "state": state,
            "model": {"name": row["model_name"], "version": row["model_version"]},
            "decision_policy_version": row["policy_version"],
            "probability_of_default": row["probability"],
            "score": row["score"],
            "risk_band": row["risk_band"],
            "decision": row["decision"],
            "model_decision": row["model_decision"],
            "reasons": list(row["reasons"] or []),
            "scored_at": iso(row["scored_at"]),
            "opened_at": iso(row["opened_at"]),
            "due_at": iso(due),
            "overdue": state in ACTIVE and due is not None and due < now,
            "claimed_by": claimed_by,
            "claim_expires_at": iso(expires),
            "final_decision": row["final_decision"],
            "reason_code": row["reason_code"],
            "note": row["note"],
            "override": None if row["override"] is None else bool(row["override"]),
            "decided_by": row["decided_by"],
            "decided_at": iso(row["decided_at"]),
            "contest_reason": row["contest_reason"],
        }

    # ------------------------------------------------------------ acting

    def claim(self, case_id: int, actor: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Take a case for ``claim_minutes``: exactly one of several reviewers at once wins."""
        now = now or datetime.now(UTC)
        expires = now + timedelta(minutes=self.config.claim_minutes)
        with self._writing() as connection:
            won = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, self._claimable(actor, now))
                .values(state="claimed", claimed_by=actor, claim_expires_at=expires)
            ).rowcount
            if won == 1:
                self._event(connection, case_id, actor, "claimed", {"until": iso(expires)}, now)
        return self._after(case_id, won, actor, "claim", now)

    def release(self, case_id: int, actor: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Give a claimed case back to the queue (only its holder may)."""
        now = now or datetime.now(UTC)
        with self._writing() as connection:
            done = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.state == "claimed", cases.c.claimed_by == actor)
                .values(state="open", claimed_by=None, claim_expires_at=None)
            ).rowcount
            if done == 1:
                self._event(connection, case_id, actor, "released", {}, now)
        return self._after(case_id, done, actor, "release", now)

    def decide(
        self,
        case_id: int,
        actor: str,
        *,
        decision: str,
        reason_code: str | None,
        note: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Record the final decision: the holder of the claim, or anyone on an open case (claimed at once).

        :class:`policy.CaseRuleError` when the rules refuse it (nothing changes)."""
        now = now or datetime.now(UTC)
        case = self.get(case_id, now=now)
        final = policy.check_final(case, decision, reason_code, note, self.config)
        with self._writing() as connection:
            done = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, self._claimable(actor, now))
                .values(
                    state="decided",
                    claimed_by=None,
                    claim_expires_at=None,
                    final_decision=final.decision,
                    reason_code=final.reason_code,
                    note=final.note,
                    override=int(final.override),
                    decided_by=actor,
                    decided_at=now,
                )
            ).rowcount
            if done == 1:
                detail = {"decision": final.decision, "reason_code": final.reason_code, "note": final.note}
                self._event(connection, case_id, actor, "decided", {**detail, "override": final.override}, now)
        return self._after(case_id, done, actor, "decide", now)

    def contest(
        self, record: dict[str, Any], actor: str, *, reason: str, note: str | None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Open a contest of a logged decision (GDPR Art. 22(3)); one per decision, the record unchanged."""
        now = now or datetime.now(UTC)
        row = {**self.case_row(record, kind="contest", now=now), "contest_reason": reason}
        with self._writing() as connection:
            inserted = connection.execute(
                self._insert(cases)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["case_key"])
                .returning(cases.c.id)
            ).scalar()
            if inserted is not None:
                self._event(connection, inserted, actor, "contested", {"reason": reason, "note": note}, now)
        if inserted is None:
            existing = self.for_decision(str(record["request_id"]), now=now)
            contest = next(case for case in existing if case["kind"] == "contest")
            raise CaseConflictError(
                f"decision {record['request_id']!r} is already contested (case {contest['id']})", contest
            )
        return self.get(inserted, now=now)

    def _claimable(self, actor: str, now: datetime) -> Any:
        """Open, or claimed by ``actor``, or claimed by someone whose claim has lapsed."""
        return or_(
            cases.c.state == "open",
            and_(cases.c.state == "claimed", or_(cases.c.claimed_by == actor, cases.c.claim_expires_at < now)),
        )

    def _after(self, case_id: int, changed: int, actor: str, action: str, now: datetime) -> dict[str, Any]:
        case = self.get(case_id, now=now)
        if changed == 1:
            return case
        if case["state"] == "decided":
            why = f"case {case_id} is already decided ({case['final_decision']} by {case['decided_by']})"
        elif case["state"] == "claimed":
            why = f"case {case_id} is claimed by {case['claimed_by']} until {case['claim_expires_at']}"
        elif action == "release":
            why = f"case {case_id} is not claimed by {actor}"
        else:
            why = f"case {case_id} is {case['state']}"
        raise CaseConflictError(f"cannot {action}: {why}", case)

    def _event(
        self, connection: Connection, case_id: int, actor: str, action: str, detail: dict[str, Any], now: datetime
    ) -> None:
        connection.execute(
            case_events.insert().values(case_id=case_id, at=now, actor=actor, action=action, detail=detail)
        )

    # ------------------------------------------------------------ figures

    def gauges(self, *, now: datetime | None = None) -> dict[str, float]:
        """For /metrics and the monitor: active and overdue cases, the oldest active case's age."""
        now = now or datetime.now(UTC)
        with self.engine.connect() as connection:
            active = connection.execute(
                select(func.count(), func.min(cases.c.opened_at)).where(cases.c.state.in_(ACTIVE))
            ).one()
            overdue = connection.execute(
                select(func.count()).where(cases.c.state.in_(ACTIVE), cases.c.due_at < now)
            ).scalar_one()
        oldest = utc(_moment(active[1])) if active[1] is not None else None
        return {
            "open": float(active[0]),
            "overdue": float(overdue),
            "oldest_age_seconds": (now - oldest).total_seconds() if oldest else 0.0,
        }

    def decided(self) -> list[dict[str, Any]]:
        """Every decided referral (request id, band, the model's and the final decision, who, why, when)."""
        columns = [
            cases.c.request_id,
            cases.c.risk_band,
            cases.c.model_decision,
            cases.c.final_decision,
            cases.c.override,
            cases.c.decided_by,
            cases.c.reason_code,
            cases.c.due_at,
            cases.c.decided_at,
            cases.c.kind,
        ]
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).where(cases.c.state == "decided").order_by(cases.c.id))
            return [
                {**dict(row._mapping), "due_at": utc(row.due_at), "decided_at": utc(row.decided_at)} for row in rows
            ]


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def open_store(config: ReviewConfig, log_dir: Path, *, migrate: bool = True) -> CaseStore:
    """The deployment's case store (``review.database_url``, else SQLite beside the log), migrated."""
    store = CaseStore(config.database_url or default_url(log_dir), config, log_dir=log_dir)
    if migrate:
        store.migrate()
    return store
