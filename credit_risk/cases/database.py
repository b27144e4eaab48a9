"""The case store's database: the engine (SQLite beside the log, or PostgreSQL), its transactions and migrations.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for writing transactions, so several workers share
one file; the schema is brought to the newest Alembic migration (``migrations/``) under a lock, so
workers starting at once migrate once. The tables are declared in :mod:`credit_risk.cases.models`.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite

from credit_risk.cases.models import case_events, cases

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "credit_risk_cases_version"  # not alembic_version: the database may be shared (MLflow's)
_PG_LOCK = 7_162_026  # the advisory lock that serialises migrations of one PostgreSQL database


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


def to_datetime(value: Any) -> datetime:
    """A time as logged or stored (a datetime, or ISO text with ``Z``) as a datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


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


class CaseDatabase:
    """The engine of one case database, its writing transactions and migrations. Thread-safe (a pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
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

    def _insert(self, table: Any) -> Any:
        return sqlite.insert(table) if self.sqlite else postgresql.insert(table)

    def _insert_case(self, connection: Connection, row: dict[str, Any]) -> int | None:
        """Insert a case unless one with its key exists (the unique key settles a race); its id, or None."""
        return connection.execute(
            self._insert(cases).values(**row).on_conflict_do_nothing(index_elements=["case_key"]).returning(cases.c.id)
        ).scalar()

    def _event(
        self, connection: Connection, case_id: int, actor: str, action: str, detail: dict[str, Any], now: datetime
    ) -> None:
        connection.execute(
            case_events.insert().values(case_id=case_id, at=now, actor=actor, action=action, detail=detail)
        )

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
