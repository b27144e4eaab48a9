"""Request ids are unique: a ledger of every id the service has answered, shared by one instance's workers.

A request id names one decision: the lookup, the notice, the replay and the outcomes find a
decision by it. So an id is claimed before its request is scored, in one SQLite file that every
uvicorn worker of the instance opens (WAL mode) and that outlives restarts:

- a new id (the common case) is one ``insert`` into a B-tree kept in the page cache, with no
  fsync (``synchronous=off``: a commit, and the checkpoint every thousand 1 KB pages, are copies
  within the page cache): no disk round trip is added to the hot path (about 40 us a request on
  this machine). The prediction log's own fsync stays what makes an answer durable;
- an id seen before with the same request (route, ``reasons`` and body bytes, by digest) is an
  idempotent retry: it gets the first answer, stored when that answer was given, and logs
  nothing new. With another request it is refused (409), as payment APIs treat an
  idempotency key: a client's retry is safe, a reused id never replaces a decision;
- an id whose first request has no stored answer (it is being answered, or the service
  stopped before the answer left) is refused (409) rather than scored twice.

No client can reuse an id the service made either. Those need no write: a made id is a random
version-4 UUID whose last four bytes are a keyed hash of the rest, under a key every worker of
the instance reads from a file beside the ledger (:class:`MadeIds`); a client sending one back is
refused as a reuse, without the hot path touching the ledger. A batch claims its id and every
row's derived id in one transaction. Rows older than the
prediction log's retention are dropped, with the decisions they name.

What the ledger cannot promise: a process crash loses nothing (the page cache has it), but a
power cut may lose its last commits or damage the file (then it is moved aside and a new one
started, logged as an error): an id reused after a power cut may not be caught. Several
instances do not share it: each instance's workers do.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from credit_risk.audit.access import index_path
from credit_risk.config import ProjectConfig, Settings
from credit_risk.private_files import private_dir, touch_private, write_once

log = logging.getLogger(__name__)

FILE_NAME = "request-ids.sqlite"
KEY_FILE_NAME = "request-ids.key"  # the instance's key for the ids it makes (MadeIds), 0600
_CHUNK = 500  # ids per "in (...)" query
HOUSEKEEPING_SECONDS = 60.0  # drop expired ids at most this often, in a thread off the request path
_PAGE_BYTES = 1024  # what each claim's commit writes per page it touches

_DDL = """
create table if not exists ids (
    request_id text primary key,
    digest blob not null,
    answer blob,
    claimed_at integer not null,
    client integer not null
) without rowid;
create index if not exists ids_claimed_at on ids (claimed_at);
"""


def ledger_path(config: ProjectConfig, settings: Settings) -> Path:
    """Beside the decision index (``<log dir>/../audit/``, or the configured index's folder)."""
    return index_path(config, settings).with_name(FILE_NAME)


def request_digest(route: str, options: str, body: bytes) -> bytes:
    """What makes two requests the same request: the route, its options and the body's bytes."""
    return hashlib.blake2b(b"\0".join((route.encode(), options.encode(), body)), digest_size=16).digest()


class MadeIds:
    """The ids the service makes: random version-4 UUIDs as 32 hex digits (``uuid.uuid4().hex``'s form),
    twelve random bytes (drawn from the OS 256 ids at a time) and four of a keyed hash (BLAKE2b) of them.

    Without the key nobody can make an id that passes :meth:`made_here` (one chance in four
    billion, and then the id is only refused); with it, the service knows an id it made without
    having written it down."""

    _IDS = 256
    _RANDOM = 12
    _MARK = 4

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0
        os.register_at_fork(after_in_child=self._forget)  # a forked worker draws its own

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._next = b"", 0

    def _mark(self, random: bytes) -> bytes:
        return hashlib.blake2b(random, key=self._key, digest_size=self._MARK).digest()

    def new(self) -> str:
        with self._lock:
            if self._next >= len(self._pool):
                self._pool, self._next = os.urandom(self._RANDOM * self._IDS), 0
            raw = bytearray(self._pool[self._next : self._next + self._RANDOM])
            self._next += self._RANDOM
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return (bytes(raw) + self._mark(raw)).hex()

    def made_here(self, request_id: str) -> bool:
        """Whether ``request_id`` is one :meth:`new` made under this key."""
        if len(request_id) != 2 * (self._RANDOM + self._MARK):
            return False
        try:
            raw = bytes.fromhex(request_id)
        except ValueError:
            return False
        return hmac.compare_digest(self._mark(raw[: self._RANDOM]), raw[self._RANDOM :])


def instance_key(path: Path) -> bytes:
    """The key in ``path``, made (32 random bytes, 0600) by the first worker that needs it."""
    return write_once(path, os.urandom(32))


class RequestIdLedgerError(Exception):
    """The ledger could not be read or written (a full disk, a damaged file): the request is not scored."""


class RequestIdConflictError(Exception):
    """The id names another request, or one whose answer is not stored; ``reason`` says which."""

    def __init__(self, request_id: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.reason = reason  # "reused" (another request) or "unfinished" (no stored answer)


@dataclass(frozen=True)
class Claim:
    """An id reserved for one request: settle it with ``complete`` once answered, ``release`` if not."""

    request_id: str
    parts: tuple[str, ...]  # a batch's derived row ids
    client: bool  # the client chose it: its answer is kept for retries


class RequestIdLedger:
    """The ledger's SQLite file, one connection per process (thread-safe)."""

    def __init__(self, path: Path, *, retention_days: int, housekeeping_seconds: float = HOUSEKEEPING_SECONDS) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        self.retention_seconds = retention_days * 86400
        self.housekeeping_seconds = housekeeping_seconds
        self._db = self._open()
        self._lock = threading.Lock()
        self._housekeeping: threading.Thread | None = None
        self._last_housekeeping = time.monotonic()
        self.made = MadeIds(instance_key(self.path.with_name(KEY_FILE_NAME)))

    def _connect(self) -> sqlite3.Connection:
        touch_private(self.path)  # 0600: SQLite gives its -wal and -shm files the database's mode
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        db.execute(f"pragma page_size={_PAGE_BYTES}")  # takes effect when the file is created
        db.execute("pragma journal_mode=wal")
        # no fsync at all, commits nor checkpoints (every 1000 pages, by the committing request: a copy
        # within the page cache): a crashed process loses nothing, a power cut may (see the module's doc)
        db.execute("pragma synchronous=off")
        return db

    def _open(self) -> sqlite3.Connection:
        """The ledger, or a new empty one when a power cut left the file unreadable (the old one is kept aside)."""
        db = self._connect()
        try:
            healthy = db.execute("pragma quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            healthy = False
        if not healthy:
            db.close()
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            self.path.rename(aside)
            log.error(
                "request id ledger %s was damaged (moved to %s): ids claimed before are not known", self.path, aside
            )
            db = self._connect()
        db.executescript(_DDL)
        return db

    def close(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.join()
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")
        self._maybe_housekeep()

    def claim(self, request_id: str, digest: bytes, *, parts: Sequence[str] = (), client: bool) -> bytes | None:
        """Reserve ``request_id`` (and a batch's ``parts``) for the request with ``digest``.

        Returns None when reserved (score it), or the stored first answer of an identical retry;
        raises :class:`RequestIdConflictError` when the id (or a part) names another request or
        an unfinished one, :class:`RequestIdLedgerError` when the ledger cannot be written."""
        try:
            return self._claim(request_id, digest, parts, client)
        except sqlite3.Error as exc:
            raise RequestIdLedgerError(str(exc)) from exc

    def _claim(self, request_id: str, digest: bytes, parts: Sequence[str], client: bool) -> bytes | None:
        if client and self.made.made_here(request_id):  # the service made it for a request: never a client's
            raise RequestIdConflictError(
                request_id,
                "reused",
                f"request id {request_id!r} is one this service made for another request: a request id names "
                "one decision; send this request with a new id",
            )
        now = int(time.time())
        row = (request_id, digest, now, int(client))
        if not parts:  # a new id (the hot path): one statement is its own transaction, no begin and commit
            with self._lock:
                taken = self._db.execute("insert or ignore into ids values (?, ?, null, ?, ?)", row).rowcount
            if taken:
                self._maybe_housekeep()
                return None
        with self._transaction() as db:  # a batch, or an id seen before: read its row under the write lock
            taken = db.execute("insert or ignore into ids values (?, ?, null, ?, ?)", row).rowcount
            if not taken:
                return self._retry(db, request_id, digest)
            if parts:
                self._check_parts(db, request_id, parts)
                db.executemany("insert into ids values (?, ?, null, ?, 0)", [(p, digest, now) for p in parts])
        return None

    def _retry(self, db: sqlite3.Connection, request_id: str, digest: bytes) -> bytes:
        stored, answer, claimed_at, by_client = db.execute(
            "select digest, answer, claimed_at, client from ids where request_id = ?", (request_id,)
        ).fetchone()
        when = _moment(claimed_at)
        if stored != digest or not by_client:  # an id the service made (or a batch row's) is never a retry
            raise RequestIdConflictError(
                request_id,
                "reused",
                f"request id {request_id!r} already names another request (first used at {when}): "
                "a request id names one decision; send this request with a new id",
            )
        if answer is None:
            raise RequestIdConflictError(
                request_id,
                "unfinished",
                f"request id {request_id!r} names a request received at {when} that has no stored answer "
                "(it is still being answered, or the service stopped before answering it): look the decision "
                "up by its id, or send the request with a new id",
            )
        return bytes(answer)

    def _check_parts(self, db: sqlite3.Connection, request_id: str, parts: Sequence[str]) -> None:
        """Refuse a batch whose row would get an id another request has (the transaction rolls back)."""
        taken: set[str] = set()
        for start in range(0, len(parts), _CHUNK):
            chunk = parts[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            taken.update(
                row[0] for row in db.execute(f"select request_id from ids where request_id in ({marks})", chunk)
            )
        if taken:
            row, first = next((i, p) for i, p in enumerate(parts) if p in taken)
            raise RequestIdConflictError(
                request_id,
                "reused",
                f"batch id {request_id!r} would name its row {row} {first!r}, an id another request already "
                "has: send the batch with a new id",
            )

    def complete(self, claim: Claim, answer: bytes) -> None:
        """The claim's answer was given: keep it for an identical retry (client ids only)."""
        if claim.client:
            with self._transaction() as db:
                db.execute("update ids set answer = ? where request_id = ?", (answer, claim.request_id))

    def release(self, claim: Claim) -> None:
        """The claim's request was not answered (its record was not logged): the id is free again."""
        if not claim.client and not claim.parts:  # a made id: never written
            return
        with self._transaction() as db:
            db.executemany("delete from ids where request_id = ?", [(i,) for i in (claim.request_id, *claim.parts)])

    def _maybe_housekeep(self) -> None:
        if time.monotonic() - self._last_housekeeping < self.housekeeping_seconds:
            return
        with self._lock:
            if self._housekeeping is not None and self._housekeeping.is_alive():
                return
            self._last_housekeeping = time.monotonic()
            self._housekeeping = threading.Thread(target=self.housekeep, name="request-id-housekeeping", daemon=True)
            self._housekeeping.start()

    def housekeep(self, *, before: float | None = None) -> int:
        """Drop ids (and their stored answers) claimed before ``before`` (default: the retention's start),
        then truncate SQLite's write-ahead file so no copy of them is left in it; its own connection, so it
        never holds the request path's lock. Returns how many were dropped (0 when busy: the next round)."""
        cutoff = int(time.time()) - self.retention_seconds if before is None else int(before)
        db = self._connect()
        try:
            dropped = db.execute("delete from ids where claimed_at < ?", (cutoff,)).rowcount
            db.execute("pragma wal_checkpoint(truncate)")
            return dropped
        except sqlite3.OperationalError:  # busy: the next round does it
            return 0
        finally:
            db.close()


def _moment(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
