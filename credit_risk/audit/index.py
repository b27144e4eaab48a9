"""An index of the decision log: request id (and applicant id) -> the file and row that hold it.

The log is Parquet files under date partitions, written once and never changed. A lookup by
request id in a month of it (a million rows, about a hundred files) cannot scan every file's
``request_id`` column: the ids are random, so Parquet's min/max statistics prune nothing (a
filtered scan of 1M rows takes seconds, ``bench/lookup_bench.py``). So the index keeps, in one
SQLite file, a 64-bit hash of each row's ``request_id`` and ``applicant_id`` (when the log has
that column), its time, file and row number: a lookup is a B-tree search on an integer.

A log file holds up to ``flush_every_records`` rows in one row group, and Parquet can only
decode whole row groups: reading one row would decode ten thousand. So indexing a file also
writes a lookup copy of it beside the index, with small row groups, and a lookup decodes only
the row group of its row. The copies hold exactly the log's rows (privacy settings applied)
and are deleted with the log files they copy, when retention removes them.

Only files not yet indexed are ever read; a partition folder whose modification time has not
changed is not even listed again. Several service workers may share one index (SQLite WAL).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.decision_log.paths import PARTITION, PARTITION_DIR
from credit_risk.private_files import atomic_write, private_dir, touch_private

APPLICANT_COLUMN = "applicant_id"
ROWS_PER_GROUP = 128  # rows in each row group of a lookup copy: what one lookup decodes

_DDL = """
create table if not exists partitions (name text primary key, mtime_ns integer not null);
create table if not exists files (
    id integer primary key, path text unique not null, partition text not null, rows integer not null
);
create table if not exists decisions (
    request_key integer not null,
    applicant_key integer,
    scored_at_us integer not null,
    file integer not null,
    row integer not null
);
create index if not exists decisions_request on decisions (request_key);
create index if not exists decisions_applicant on decisions (applicant_key, scored_at_us)
    where applicant_key is not null;
create index if not exists decisions_file on decisions (file);
"""
_SELECT = "select d.scored_at_us, f.path, d.row from decisions d join files f on f.id = d.file "


def key_of(text: str) -> int:
    """A signed 64-bit hash of an id: the index's key (a match is confirmed on the row read)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big", signed=True
    )


@dataclass(frozen=True)
class Location:
    """Where one logged decision sits: its log file and row, and its lookup copy."""

    scored_at: datetime
    path: Path
    copy: Path
    row: int


def _us(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1_000_000)


class DecisionIndex:
    """The SQLite index of one log directory; thread-safe, refreshed incrementally."""

    def __init__(self, log_dir: Path, index_path: Path, *, refresh_seconds: float = 2.0) -> None:
        self.log_dir = Path(log_dir)
        self.index_path = Path(index_path)
        self.copies = self.index_path.with_name(self.index_path.stem + "-rows")
        self.refresh_seconds = refresh_seconds
        private_dir(self.index_path.parent)
        touch_private(self.index_path)  # SQLite gives its -wal and -shm files this file's mode
        self._db = sqlite3.connect(self.index_path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma secure_delete=on")  # rows retention forgets are overwritten, not left behind
        self._db.execute("pragma synchronous=normal")
        self._db.execute("pragma cache_size=-65536")  # 64 MiB: building a large index stays off the disk
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

    def forget_before(self, oldest_kept: date) -> list[str]:
        """Retention: forget the partitions older than ``oldest_kept`` and delete their lookup copies (copies
        of partitions the index never recorded too); returns the partitions' names."""
        cutoff = f"{PARTITION}={oldest_kept.isoformat()}"  # date=YYYY-MM-DD names sort as their dates
        with self._lock:
            names = {row[0] for row in self._db.execute("select name from partitions where name < ?", (cutoff,))}
            names |= {row[0] for row in self._db.execute("select partition from files where partition < ?", (cutoff,))}
            if self.copies.is_dir():
                names |= {e.name for e in os.scandir(self.copies) if PARTITION_DIR.match(e.name) and e.name < cutoff}
            for name in sorted(names):
                self._forget_partition(name)
            if names:
                self._db.execute("pragma wal_checkpoint(truncate)")  # the old pages leave the -wal file too
        return sorted(names)

    def _forget_partition(self, name: str) -> None:
        with self._transaction():
            self._db.execute("delete from decisions where file in (select id from files where partition = ?)", (name,))
            self._db.execute("delete from files where partition = ?", (name,))
            self._db.execute("delete from partitions where name = ?", (name,))
        shutil.rmtree(self.copies / name, ignore_errors=True)

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
            (self.copies / gone).unlink(missing_ok=True)
        for path in sorted(on_disk - indexed):
            rows = self._copy_and_key(path)
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

    def _copy_and_key(self, relative: str) -> list[tuple[Any, ...]]:
        """Write the file's lookup copy (small row groups, atomically) and return each row's keys and time."""
        table = pq.read_table(self.log_dir / relative)
        copy = self.copies / relative
        # a copy can be made again from the log: written whole, not made durable (no folder fsync)
        atomic_write(
            copy,
            lambda handle: pq.write_table(table, handle, row_group_size=ROWS_PER_GROUP, compression="zstd"),
            durable=False,
        )
        request_keys = [key_of(text) for text in table["request_id"].to_pylist()]
        times = table["scored_at"].cast(pa.int64()).to_pylist()  # timestamp[us] -> microseconds
        if APPLICANT_COLUMN in table.column_names:
            applicants = [
                None if a is None else key_of(a) for a in table[APPLICANT_COLUMN].cast(pa.string()).to_pylist()
            ]
        else:
            applicants = [None] * len(request_keys)
        return list(zip(request_keys, applicants, times, strict=True))

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

    def find(self, request_id: str) -> dict[str, Any] | None:
        """The logged decision with this request id, as the log holds it. A miss indexes the log's new
        files first (at most every ``refresh_seconds``): a lookup never scans the log.

        The service gives each decision its own id (:mod:`credit_risk.audit.request_ids`); where a log
        written before that holds an id twice, the first decision (the answer that stands) is the one
        found, never a later one that reused its id (the applicant's list shows both)."""
        found = self._find(request_id)
        if found is None and time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.refresh()
            found = self._find(request_id)
        return found

    def _find(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            rows = self._db.execute(
                _SELECT + "where d.request_key = ? order by d.scored_at_us, d.file, d.row", (key_of(request_id),)
            ).fetchall()
        for record in read_rows([self._location(row) for row in rows]):
            if record["request_id"] == request_id:  # a hash collision reads another id: skip it
                return record
        return None

    def locate(self, request_id: str) -> Location | None:
        """Where the first decision with this request id sits (confirmed by reading it), or None."""
        with self._lock:
            rows = self._db.execute(
                _SELECT + "where d.request_key = ? order by d.scored_at_us, d.file, d.row", (key_of(request_id),)
            ).fetchall()
        for location in (self._location(row) for row in rows):
            if read_rows([location])[0]["request_id"] == request_id:
                return location
        return None

    def by_applicant(
        self, applicant_id: str, *, start: datetime, end: datetime, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of an applicant's decisions in ``[start, end)``, newest first, and the total count."""
        if time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.refresh()
        window = (key_of(applicant_id), _us(start), _us(end))
        where = "where d.applicant_key = ? and d.scored_at_us >= ? and d.scored_at_us < ? "
        with self._lock:
            rows = self._db.execute(_SELECT + where + "order by d.scored_at_us desc, d.file desc, d.row desc", window)
            locations = [self._location(row) for row in rows.fetchall()]
        # a 64-bit hash: two applicants colliding is astronomically unlikely; the rows read confirm it
        mine = [r for r in read_rows(locations[offset : offset + limit]) if r.get(APPLICANT_COLUMN) == applicant_id]
        return mine, len(locations)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("select count(*) from decisions").fetchone()[0])

    def _location(self, row: tuple[Any, ...]) -> Location:
        at, path, number = row
        return Location(
            scored_at=datetime.fromtimestamp(at / 1_000_000, UTC),
            path=self.log_dir / path,
            copy=self.copies / path,
            row=int(number),
        )


def read_rows(locations: list[Location]) -> list[dict[str, Any]]:
    """The logged rows at these locations, in order; each decodes one small row group of its lookup copy."""
    out = []
    files: dict[Path, pq.ParquetFile] = {}
    for location in locations:
        handle = files.get(location.copy) or files.setdefault(location.copy, pq.ParquetFile(location.copy))
        group, offset = divmod(location.row, ROWS_PER_GROUP)
        out.append(handle.read_row_group(group).slice(offset, 1).to_pylist()[0])
    return out
