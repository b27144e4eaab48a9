"""The prediction log writer: a record is durable before its answer leaves, Parquet follows in the background.

``submit`` (never blocks on the disk) appends records to this process's
write-ahead file and returns a ticket; ``await wait_durable(ticket)`` returns
once they are fsync'd. On the service's event loop (:meth:`bind_loop`) the
records of one loop iteration are appended together, in one write into the page
cache, and a child process (:mod:`serving.prediction_log.syncer`) makes them
durable with one ``fdatasync`` for everything that arrived meanwhile (group
commit); its answer arrives on a socket the loop watches, which settles the
waiting requests there: no thread of this process waits on the disk or takes
the GIL from the loop. Elsewhere (a worker thread, a script) ``submit``
appends at once, and the answers are read by the writer's own thread. With
``durability: interval`` the request does not wait and the segment is synced
when it closes (a SIGKILL then loses nothing written, a power cut up to one
segment).

A segment closes every ``flush_every_records`` records or
``flush_interval_seconds`` seconds; the Parquet thread has it turned into files
(:mod:`serving.prediction_log.files`) by a child process, off this process's GIL
(:mod:`serving.prediction_log.converter`; in this process when the child cannot),
and deletes it. At start, and every ``lease_seconds`` after, segments left
by writers that are dead (:mod:`serving.prediction_log.lease`: lock free, and
lease expired or of this kernel) are converted; a live writer's, on this host
or another sharing the directory, are never touched. Records in
memory (accepted, not yet in Parquet) are bounded by ``queue_max_records``:
past it ``submit`` refuses at once (the service answers 503).
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log import retention as log_retention
from credit_risk.decision_log.privacy import PrivacyError, check_privacy
from credit_risk.private_files import fsync_dir
from credit_risk.schema import FeatureSchema
from serving.deadlines import DEADLINES
from serving.prediction_log.answers import Answers
from serving.prediction_log.appender import Encoded, Ledger, WriteAhead
from serving.prediction_log.commits import Commits
from serving.prediction_log.converter import Converter
from serving.prediction_log.errors import (
    PredictionLogClosedError,
    PredictionLogError,
    PredictionLogFullError,
    PredictionLogWriteError,
)
from serving.prediction_log.lease import LeaseKeeper, writer_identity
from serving.prediction_log.parquet_side import IDLE_WAKE, ParquetSide
from serving.prediction_log.syncer import SyncerStartError
from serving.prediction_log.uploads import Uploader
from serving.prediction_log.wal import (
    WAL_DIR,
    Segment,
    VersionKey,
    WalLock,
)

log = logging.getLogger(__name__)

__all__ = [
    "HIGH_WATER",
    "PredictionLogClosedError",
    "PredictionLogError",
    "PredictionLogFullError",
    "PredictionLogWriteError",
    "PredictionLogWriter",
]

HIGH_WATER = 0.8  # /ready turns 503 once this share of queue_max_records is waiting for Parquet
_ANSWER_POLL = 0.05  # seconds between the writer thread's looks at the fsync answers when no loop reads them


class PredictionLogWriter(ParquetSide):
    """Write-ahead appends + the fsync child (group commit) + Parquet thread + MLflow uploader;
    ``submit`` is thread-safe. The Parquet thread, recovery and retention are its base class's
    (:mod:`serving.prediction_log.parquet_side`)."""

    def __init__(
        self,
        config: PredictionLogConfig,
        *,
        directory: Path,
        schema: FeatureSchema,
        client_factory: Callable[[], MlflowClient] | None,
        hash_key: str | bytes | SecretStr | None = None,
        out_of_process: bool = True,
        retention: log_retention.RetentionTargets | None = None,
    ) -> None:
        self.config = config
        self.directory = Path(directory)
        # every copy retention cuts (the service names the audit files and the MLflow store)
        self._retention = retention or log_retention.RetentionTargets(log_dir=self.directory)
        self._remote_pass: threading.Thread | None = None  # the MLflow copies' retention, when one runs
        self.feature_schema = schema
        if isinstance(hash_key, SecretStr):
            hash_key = hash_key.get_secret_value()
        self._hash_key = hash_key.encode() if isinstance(hash_key, str) else hash_key
        self.arrow_schema: pa.Schema | None = None
        self.wal_id = writer_identity(config.writer_id)  # unique across hosts: every file it writes is named so
        self._wal_folder = self.directory / WAL_DIR / self.wal_id
        self._wal_lock = WalLock(self._wal_folder)
        self._lease = LeaseKeeper(self._wal_folder, self.wal_id, config.lease_seconds)
        self._next_takeover = 0.0
        self._lock = threading.RLock()
        self._parquet_wake = threading.Condition(self._lock)
        self._wake = threading.Event()  # wakes the writer thread: a segment opened, or close
        self._state = "new"  # new -> running -> closing -> closed
        self._incoming: list[tuple[int, Encoded]] = []
        self._schemas: dict[VersionKey, FeatureSchema] = {}
        self._arrow: dict[VersionKey, pa.Schema] = {}
        self._closed_segments: list[Segment] = []
        self._wal_done = False  # close() has had the last segment closed and answered
        self._seq = 0  # last ticket handed out
        self._commits = Commits(PredictionLogWriteError)
        wal_problem = functools.partial(self._problem, "wal")
        ledger = Ledger(self._refused, wal_problem, self._wal_healthy, self._closed, opened=self._wake.set)
        self._wal = WriteAhead(
            config,
            self._wal_folder,
            hash_key=self._hash_key,
            schema_of=lambda key: self._schemas.get(key, self.feature_schema),
            commits=self._commits,
            ledger=ledger,
        )
        self._syncer = self._wal.syncer
        self._answers = Answers(
            self._lock, self._syncer, settle=self._wal.settle, commits=self._commits, problem=wal_problem
        )
        self._flush_scheduled = False
        self._in_memory = 0  # accepted records not yet in Parquet (or refused)
        self._problems: dict[str, str] = {}  # "wal" / "parquet" -> the last error, until the next success
        self._threads: list[threading.Thread] = []
        self._uploader: Uploader | None = None
        if client_factory is not None and config.upload_artifacts:
            self._uploader = Uploader(
                config, directory=self.directory, wal_id=self.wal_id, client_factory=client_factory, count=self._count
            )
        self._next_retention = 0.0
        self._last_flush_at: float | None = None
        self._stats = {
            "written_records": 0,
            "written_files": 0,
            "write_errors": 0,
            "invalid_records": 0,
            "rejected_records": 0,
            "recovered_records": 0,
            "uploaded_files": 0,
            "upload_failures": 0,
            "deleted_partitions": 0,
        }
        self._converter = Converter(out_of_process=out_of_process)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Check settings and directory, take this writer's WAL, recover what gone writers left, start."""
        if self._state != "new":
            raise PredictionLogError("the prediction log writer was already started")
        try:
            check_privacy(self.config, self.feature_schema, self._hash_key)
        except PrivacyError as exc:
            raise PredictionLogError(str(exc)) from None
        self.arrow_schema = self._arrow_schema_for(self.feature_schema)
        self._check_writable()
        if not self._wal_lock.acquire(create=True):
            raise PredictionLogError(f"write-ahead folder {self._wal_folder} is locked by another process")
        try:
            self._lease.start()
        except OSError as exc:
            raise PredictionLogError(f"cannot write the lease in {self._wal_folder}: {exc}") from exc
        fsync_dir(self._wal_folder.parent)
        self.apply_retention()
        self._recover(at_start=True)
        try:
            self._syncer.start()
        except SyncerStartError as exc:
            raise PredictionLogError(str(exc)) from None
        self._state = "running"
        for target, name in ((self._wal_loop, "prediction-log-wal"), (self._parquet_loop, "prediction-log-parquet")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._uploader is not None:
            self._uploader.start()
        log.info("prediction log writing to %s (wal %s, durability %s)", self.directory, self.wal_id, self.durability)

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking records, write everything accepted, give pending uploads one last try."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._state in ("new", "closed"):
                self._state = "closed"
                return
            self._state = "closing"
        self._wake.set()
        self._answers.unbind()
        for thread in self._threads[:1]:  # the writer thread: it appends and reads answers no more
            thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            self._append_incoming()
            self._wal.close_current()
        while self._syncer.waiting and time.monotonic() < deadline:
            self._answers.wait(min(_ANSWER_POLL, max(deadline - time.monotonic(), 0.0)))
        with self._lock:
            self._wal_done = True
            self._parquet_wake.notify_all()
        for thread in self._threads[1:]:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if any(thread.is_alive() for thread in self._threads) or self._syncer.waiting or self._wal.pending:
            log.error("prediction log: %d record(s) not in Parquet within %.1fs of close", self.queued, timeout)
        else:
            self._lease.stop()
            self._wal_lock.release()
            shutil.rmtree(self._wal_folder, ignore_errors=True)
        with self._lock:
            self._answers.closed = True
            self._syncer.close()
        self._converter.close()
        if self._uploader is not None:
            self._uploader.stop(deadline)
        self._state = "closed"

    def bind_loop(self) -> None:
        """Called on the service's event loop: from now on the fsync answers are read there
        (``add_reader``) and the records submitted there are appended once per loop iteration."""
        if self._state == "running":
            self._answers.bind()

    @property
    def fsync_pid(self) -> int | None:
        """The fsync child's process id (None while it is not running)."""
        return self._syncer.pid

    @property
    def durability(self) -> str:
        return self.config.durability

    @property
    def queued(self) -> int:
        """Records accepted and not yet in Parquet (they are in the write-ahead file or on their way)."""
        with self._lock:
            return self._in_memory

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics``."""
        with self._lock:
            out: dict[str, Any] = {"queued": self._in_memory, **self._stats}
        out["fsyncs"] = self._syncer.fsyncs
        out["converted_out_of_process"] = self._converter.converted
        out["fsync_process_restarts"] = self._syncer.restarts
        out["converter_failures"] = self._converter.failures
        out["uploads_pending"] = self._uploader.pending if self._uploader else 0
        out["last_flush_at"] = self._last_flush_at
        out["running"] = self._state == "running"
        return out

    def health_problem(self) -> str | None:
        """Why the log cannot be trusted to take more records now (``/ready`` answers 503), else None."""
        with self._lock:
            if self._state != "running":
                return "prediction log not running"
            if not self._lease.valid():
                return "prediction log lease not renewed (the log directory does not answer)"
            if self._problems:
                return "prediction log write errors: " + "; ".join(f"{k}: {v}" for k, v in self._problems.items())
            high = max(int(self.config.queue_max_records * HIGH_WATER), 1)
            if self._in_memory >= high:
                return f"prediction log queue above its high-water mark ({self._in_memory} of {high} records)"
        return None

    # ------------------------------------------------------------ request side (never blocks)

    def submit(self, records: list[dict[str, Any]], *, schema: FeatureSchema | None = None) -> int | None:
        """Accept records of one model version (``schema``: that version's own); returns their ticket.

        Raises at once, without waiting: :class:`PredictionLogFullError` past
        ``queue_max_records``, :class:`PredictionLogClosedError` when not running.
        """
        if not records:
            return None
        count = len(records)
        key = (str(records[0]["model_name"]), str(records[0]["model_version"]))
        encoded = self._wal.encode(records)  # before the lock: a batch from a worker thread holds it briefly
        with self._lock:
            if self._state != "running":
                raise PredictionLogClosedError("the prediction log is not running")
            if not self._lease.valid():  # soon another host may take this writer's files over
                raise PredictionLogClosedError("the prediction log's lease could not be renewed")
            # a single submission larger than the whole bound is let in when nothing waits
            if self._in_memory and self._in_memory + count > self.config.queue_max_records:
                self._stats["rejected_records"] += count
                raise PredictionLogFullError(
                    f"prediction log queue full ({self._in_memory} records waiting for disk): not scored, retry later"
                )
            if key not in self._schemas or schema is not None:
                self._schemas[key] = schema or self._schemas.get(key) or self.feature_schema
            first = self._seq + 1
            self._seq += count
            ticket = self._seq
            self._incoming.extend(zip(range(first, ticket + 1), encoded, strict=True))
            self._in_memory += count
            if not (self._answers.on_loop() and (self._flush_scheduled or self._schedule_flush())):
                self._append_incoming()  # a worker thread or a script: appended now
        return ticket

    def _schedule_flush(self) -> bool:
        """Append the loop's records once, at the end of this iteration (False: the loop cannot take it)."""
        try:
            self._answers.loop.call_soon(self._flush)  # type: ignore[union-attr]
        except RuntimeError:  # closed meanwhile
            return False
        self._flush_scheduled = True
        return True

    async def wait_durable(self, ticket: int | None) -> None:
        """Return once the records of ``ticket`` are in the write-ahead file (fsync'd); never blocks the loop.

        Raises :class:`PredictionLogWriteError` when their append failed (they are
        not logged), :class:`PredictionLogError` after ``submit_timeout_seconds``.
        """
        if ticket is None or self.durability != "fsync":
            return
        future = self._commits.future_for(ticket)
        if future is None:
            return
        try:
            with DEADLINES.within(self.config.submit_timeout_seconds):
                await future
        except TimeoutError:
            raise PredictionLogError(
                f"the prediction log did not confirm the write within {self.config.submit_timeout_seconds}s"
            ) from None

    # ------------------------------------------------------------ write-ahead appends and their fsyncs

    def _flush(self) -> None:
        """The event loop's records of one iteration: one append, one fsync request."""
        with self._lock:
            self._flush_scheduled = False
            self._append_incoming()

    def _append_incoming(self) -> None:
        """Append what was submitted (under the lock)."""
        group, self._incoming = self._incoming, []
        if not group:
            return
        try:
            self._wal.append(group)
        except Exception as exc:  # a bug: its requests get 503, nothing waits forever
            log.exception("prediction log: appending %d record(s) failed", len(group))
            self._wal.refuse(group, exc)

    def _wal_loop(self) -> None:
        """The writer thread: closes segments on time, and reads the fsync answers when no loop does."""
        while self._state == "running":
            with self._lock:
                closes_at = self._wal.closes_at
                due = closes_at - time.monotonic() if closes_at is not None else IDLE_WAKE
                bound = self._answers.loop is not None
            if bound:
                self._wake.wait(max(min(due, 1.0), 0.0))  # each second at least: a child to revive
                self._wake.clear()
                if self._syncer.dead:
                    self._answers.revive()
            else:
                self._answers.wait(max(min(due, _ANSWER_POLL), 0.0))
            with self._lock:
                closes_at = self._wal.closes_at
                if closes_at is not None and time.monotonic() >= closes_at:
                    self._append_incoming()  # what the loop submitted this iteration goes in it too
                    self._wal.close_current()

    # ------------------------------------------------------------ what the write-ahead side reports

    def _refused(self, count: int, reason: str) -> None:
        self._problem("wal", reason)
        self._stats["rejected_records"] += count
        self._in_memory -= count

    def _wal_healthy(self) -> None:
        self._problems.pop("wal", None)

    def _closed(self, segment: Segment) -> None:
        self._closed_segments.append(segment)
        self._parquet_wake.notify()
