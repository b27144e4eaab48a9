"""An index of the decision log: request id (and applicant id) -> the file and row that hold it.

The log is Parquet files under date partitions, written once and never changed. A lookup by
request id in a month of it (a million rows, hundreds of files) cannot scan every file's
``request_id`` column: the ids are random, so Parquet's min/max statistics prune nothing. So the
index keeps, in one SQLite file, each logged row's ``request_id``, ``applicant_id`` (when the log
has that column), time, file and row number. A lookup is a B-tree search plus one read of one
file; only files not yet indexed are ever read to index them, and a partition folder whose
modification time has not changed is not even listed again. Files removed by retention are
dropped from the index when their folder is next looked at.

Several service workers may share one index file (SQLite WAL, one writer at a time).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.decision_log.paths import PARTITION_DIR

APPLICANT_COLUMN = "applicant_id"
_INDEX_COLUMNS = ("request_id", "scored_at")

_DDL = """
create table if not exists partitions (name text primary key, mtime_ns integer not null);
create table if not exists files (
    id integer primary key, path text unique not null, partition text not null, rows integer not null
);
create table if not exists decisions (
    request_id text not null,
    applicant_id text,
    scored_at_us integer not null,
    file integer not null,
    row integer not null
);
create index if not exists decisions_request on decisions (request_id);
create index if not exists decisions_applicant on decisions (applicant_id, scored_at_us) where applicant_id is not null;
create index if not exists decisions_file on decisions (file);
"""
_SELECT = (
    "select d.request_id, d.applicant_id, d.scored_at_us, f.path, d.row from decisions d join files f on f.id = d.file "
)


@dataclass(frozen=True)
class Location:
    """Where one logged decision sits."""

    request_id: str
    applicant_id: str | None
    scored_at: datetime
    path: Path
    row: int


def _us(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1_000_000)


class DecisionIndex:
    """The SQLite index of one log directory; thread-safe, refreshed incrementally."""

    def __init__(self, log_dir: Path, index_path: Path, *, refresh_seconds: float = 2.0) -> None:
        self.log_dir = Path(log_dir)
        self.index_path = Path(index_path)
        self.refresh_seconds = refresh_seconds
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.index_path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.executescript(_DDL)
        self._lock = threading.Lock()
        self._last_refresh = 0.0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ building

    def refresh(self) -> int:
        """Index every file not yet indexed, forget removed ones; returns how many files were added."""
        added = 0
        with self._lock:
            self._last_refresh = time.monotonic()
            known = dict(self._db.execute("select name, mtime_ns from partitions"))
            present = {}
            if self.log_dir.is_dir():
                for entry in os.scandir(self.log_dir):
                    if entry.is_dir() and PARTITION_DIR.match(entry.name):
                        present[entry.name] = entry.stat().st_mtime_ns
            for name in sorted(set(known) - set(present)):  # a whole partition deleted by retention
                self._forget_partition(name)
            for name, mtime in sorted(present.items()):
                if known.get(name) != mtime:
                    added += self._index_partition(name, mtime)
        return added

    def _forget_partition(self, name: str) -> None:
        with self._transaction():
            self._db.execute("delete from decisions where file in (select id from files where partition = ?)", (name,))
            self._db.execute("delete from files where partition = ?", (name,))
            self._db.execute("delete from partitions where name = ?", (name,))

    def _index_partition(self, name: str, mtime: int) -> int:
        folder = self.log_dir / name
        on_disk = {
            f"{name}/{entry.name}"
            for entry in os.scandir(folder)
            if entry.is_file() and entry.name.endswith(".parquet") and not entry.name.startswith((".", "_"))
        }
        indexed = {row[0] for row in self._db.execute("select path from files where partition = ?", (name,))}
        added = 0
        for gone in sorted(indexed - on_disk):
            with self._transaction():
                self._db.execute("delete from decisions where file = (select id from files where path = ?)", (gone,))
                self._db.execute("delete from files where path = ?", (gone,))
        for path in sorted(on_disk - indexed):
            rows = self._rows_of(self.log_dir / path)
            with self._transaction():
                if self._db.execute("select 1 from files where path = ?", (path,)).fetchone():
                    continue  # another worker indexed it meanwhile
                cursor = self._db.execute(
                    "insert into files (path, partition, rows) values (?, ?, ?)", (path, name, len(rows))
                )
                file_id = cursor.lastrowid
                self._db.executemany(
                    "insert into decisions values (?, ?, ?, ?, ?)",
                    [(*row, file_id, number) for number, row in enumerate(rows)],
                )
            added += 1
        with self._transaction():
            self._db.execute("insert or replace into partitions values (?, ?)", (name, mtime))
        return added

    @staticmethod
    def _rows_of(file: Path) -> list[tuple[Any, ...]]:
        """(request id, applicant id, scored_at in microseconds) of each row, in file order."""
        schema = pq.read_schema(file)
        columns = [*_INDEX_COLUMNS, *([APPLICANT_COLUMN] if APPLICANT_COLUMN in schema.names else [])]
        table = pq.read_table(file, columns=columns)
        request_ids = table["request_id"].to_pylist()
        times = table["scored_at"].cast(pa.int64()).to_pylist()  # timestamp[us] -> microseconds
        applicants = (
            table[APPLICANT_COLUMN].cast(pa.string()).to_pylist()
            if APPLICANT_COLUMN in table.column_names
            else [None] * len(request_ids)
        )
        return list(zip(request_ids, applicants, times, strict=True))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    # ------------------------------------------------------------ lookups

    def locate(self, request_id: str) -> Location | None:
        """The newest logged decision with this request id; new files are indexed first on a miss
        (at most every ``refresh_seconds``), so a lookup never scans the log."""
        found = self._locate(request_id)
        if found is None and time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.refresh()
            found = self._locate(request_id)
        return found

    def _locate(self, request_id: str) -> Location | None:
        with self._lock:
            row = self._db.execute(
                _SELECT + "where d.request_id = ? order by d.scored_at_us desc limit 1",
                (request_id,),
            ).fetchone()
        return self._location(row) if row else None

    def by_applicant(
        self, applicant_id: str, *, start: datetime, end: datetime, limit: int, offset: int
    ) -> tuple[list[Location], int]:
        """One page of an applicant's decisions in ``[start, end)``, newest first, and the total count."""
        if time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.refresh()
        window = (applicant_id, _us(start), _us(end))
        where = "where d.applicant_id = ? and d.scored_at_us >= ? and d.scored_at_us < ? "
        with self._lock:
            total = self._db.execute(f"select count(*) from decisions d {where}", window).fetchone()[0]
            rows = self._db.execute(
                _SELECT + where + "order by d.scored_at_us desc, d.request_id desc limit ? offset ?",
                (*window, limit, offset),
            ).fetchall()
        return [self._location(row) for row in rows], int(total)

    def in_window(self, *, start: datetime, end: datetime) -> Iterator[Location]:
        """Every indexed decision in ``[start, end)``, oldest first (replay of a window)."""
        self.refresh()
        with self._lock:
            rows = self._db.execute(
                _SELECT + "where d.scored_at_us >= ? and d.scored_at_us < ? order by d.scored_at_us, d.request_id",
                (_us(start), _us(end)),
            ).fetchall()
        return (self._location(row) for row in rows)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("select count(*) from decisions").fetchone()[0])

    def _location(self, row: tuple[Any, ...]) -> Location:
        request_id, applicant, at, path, number = row
        return Location(
            request_id=request_id,
            applicant_id=applicant,
            scored_at=datetime.fromtimestamp(at / 1_000_000, UTC),
            path=self.log_dir / path,
            row=int(number),
        )


def read_rows(locations: list[Location]) -> list[dict[str, Any]]:
    """The logged rows at these locations, in the same order (each file read once)."""
    by_file: dict[Path, list[int]] = {}
    for location in locations:
        by_file.setdefault(location.path, []).append(location.row)
    tables: dict[Path, pa.Table] = {}
    for path, rows in by_file.items():
        tables[path] = pq.read_table(path).take(pa.array(sorted(set(rows))))
    out = []
    for location in locations:
        rows = sorted(set(by_file[location.path]))
        record = tables[location.path].slice(rows.index(location.row), 1).to_pylist()[0]
        if record.get("request_id") != location.request_id:
            raise LookupError(f"{location.path}: row {location.row} no longer holds {location.request_id!r}")
        out.append(record)
    return out
