"""The prediction log writer: a record is durable before its answer leaves, Parquet follows in the background.

``submit`` (never blocks) hands records to the WAL thread and returns a ticket;
``await wait_durable(ticket)`` returns once they are on disk. The WAL thread
applies the privacy settings, appends every record that arrived while the
previous ``fsync`` ran to this process's write-ahead file and covers them with
one ``fsync`` (group commit), then wakes the waiting requests through
``loop.call_soon_threadsafe``: the event loop never waits on the disk. With
``durability: interval`` the request does not wait and the segment is synced
when it closes (a SIGKILL then loses nothing written, a power cut up to one
segment).

A segment closes every ``flush_every_records`` records or
``flush_interval_seconds`` seconds; the Parquet thread has it turned into files
(:mod:`serving.prediction_log.files`) by a child process, off this process's GIL
(:mod:`serving.prediction_log.converter`; in this process when the child cannot),
and deletes it. At start, segments left
by writers that are gone (their lock is free) are converted first. Records in
memory (accepted, not yet in Parquet) are bounded by ``queue_max_records``:
past it ``submit`` refuses at once (the service answers 503).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.privacy import PrivacyError, check_privacy, private_record
from credit_risk.schema import FeatureSchema
from serving.deadlines import DEADLINES
from serving.prediction_log.commits import Commits
from serving.prediction_log.converter import Converter
from serving.prediction_log.files import SegmentOutput, write_segment
from serving.prediction_log.housekeeping import check_writable, delete_old_partitions, remove_stale_temporaries
from serving.prediction_log.uploads import Upload, Uploader
from serving.prediction_log.wal import (
    WAL_DIR,
    Segment,
    SegmentFile,
    VersionKey,
    WalLock,
    fsync_dir,
    orphaned_wals,
    read_segment,
    record_line,
    schema_line,
    segment_path,
    segments_of,
)

log = logging.getLogger(__name__)

HIGH_WATER = 0.8  # /ready turns 503 once this share of queue_max_records is waiting for Parquet
_RETENTION_EVERY = 24 * 3600.0
_IDLE_WAKE = 60.0
_RETRY_PAUSE = 0.5


class PredictionLogError(RuntimeError):
    """The prediction log cannot start or take records; the message says why."""


class PredictionLogFullError(PredictionLogError):
    """Too many records wait for Parquet (``queue_max_records``): the service should answer 503."""


class PredictionLogClosedError(PredictionLogError):
    """``submit`` after ``close`` (or before ``start``): the service should answer 503."""


class PredictionLogWriteError(PredictionLogError):
    """The write-ahead append of these records failed: they are not logged and must not be answered."""


class PredictionLogWriter:
    """WAL thread (group commit) + Parquet thread + MLflow uploader; ``submit`` is thread-safe."""

    def __init__(
        self,
        config: PredictionLogConfig,
        *,
        directory: Path,
        schema: FeatureSchema,
        client_factory: Callable[[], MlflowClient] | None,
        hash_key: str | bytes | SecretStr | None = None,
        out_of_process: bool = True,
    ) -> None:
        self.config = config
        self.directory = Path(directory)
        self.feature_schema = schema
        if isinstance(hash_key, SecretStr):
            hash_key = hash_key.get_secret_value()
        self._hash_key = hash_key.encode() if isinstance(hash_key, str) else hash_key
        self.arrow_schema: pa.Schema | None = None
        host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"
        self._host = host
        self.wal_id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wal_folder = self.directory / WAL_DIR / self.wal_id
        self._wal_lock = WalLock(self._wal_folder)
        self._lock = threading.Lock()
        self._wal_wake = threading.Condition(self._lock)
        self._parquet_wake = threading.Condition(self._lock)
        self._state = "new"  # new -> running -> closing -> closed
        self._incoming: list[tuple[int, Mapping[str, Any]]] = []
        self._schemas: dict[VersionKey, FeatureSchema] = {}
        self._arrow: dict[VersionKey, pa.Schema] = {}
        self._closed_segments: list[Segment] = []
        self._wal_done = False  # the WAL thread has closed its last segment (after close())
        self._seq = 0  # last ticket handed out
        self._commits = Commits(PredictionLogWriteError)
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
            "fsyncs": 0,
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
        fsync_dir(self._wal_folder.parent)
        self.apply_retention()
        remove_stale_temporaries(self.directory, self._host)
        self._recover()
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
            self._wal_wake.notify_all()
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if any(thread.is_alive() for thread in self._threads):
            log.error("prediction log: %d record(s) not in Parquet within %.1fs of close", self.queued, timeout)
        else:
            self._wal_lock.release()
            shutil.rmtree(self._wal_folder, ignore_errors=True)
        self._converter.close()
        if self._uploader is not None:
            self._uploader.stop(deadline)
        self._state = "closed"

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
        out["converted_out_of_process"] = self._converter.converted
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
        with self._lock:
            if self._state != "running":
                raise PredictionLogClosedError("the prediction log is not running")
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
            self._incoming.extend(zip(range(first, self._seq + 1), records, strict=True))
            self._in_memory += count
            self._wal_wake.notify()
            return self._seq

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

    # ------------------------------------------------------------ the WAL thread

    def _wal_loop(self) -> None:
        segment: Segment | None = None
        file: SegmentFile | None = None
        number = 0
        closes_at = 0.0
        gather = self.config.group_commit_ms / 1000.0
        busy = False  # the last group's records were already waiting when it was taken: load
        while True:
            with self._lock:
                waited = False
                while self._state == "running" and not self._incoming:
                    if segment is not None and time.monotonic() >= closes_at:
                        break
                    wake = closes_at if segment is not None else time.monotonic() + _IDLE_WAKE
                    waited = True
                    self._wal_wake.wait(max(wake - time.monotonic(), 0.001))
                if gather and busy and self._incoming and self._state == "running":
                    # group commit (as PostgreSQL's commit_delay): under load, gather more records for
                    # this write and fsync; a request on a quiet service never waits. Fewer, larger groups
                    # also mean fewer GIL hand-offs with the event loop (bench/http_bench.py --durability)
                    self._lock.release()
                    try:
                        time.sleep(gather)
                    finally:
                        self._lock.acquire()
                busy = bool(self._incoming) and not waited
                group, self._incoming = self._incoming, []
                stopping = self._state != "running"
            if group:
                if segment is None:
                    number += 1
                    segment, file = self._open_segment(number)
                    closes_at = time.monotonic() + self.config.flush_interval_seconds
                assert file is not None
                self._append_group(segment, file, group)
            full = segment is not None and len(segment.records) >= self.config.flush_every_records
            if segment is not None and (full or stopping or time.monotonic() >= closes_at):
                assert file is not None
                self._close_segment(segment, file)
                segment, file = None, None
            if stopping and segment is None:
                with self._lock:
                    if not self._incoming:
                        self._wal_done = True
                        self._parquet_wake.notify_all()
                        return

    def _open_segment(self, number: int) -> tuple[Segment, SegmentFile]:
        path = segment_path(self._wal_folder, number)
        while True:
            try:
                file = SegmentFile(path, zero_fill=self.durability == "fsync")
                fsync_dir(self._wal_folder)
                return Segment(number, path), file
            except OSError as exc:
                self._problem("wal", exc)
                time.sleep(_RETRY_PAUSE)

    def _append_group(self, segment: Segment, file: SegmentFile, group: list[tuple[int, Mapping[str, Any]]]) -> None:
        """One write and one fsync for the whole group; on failure the group is cut off and refused."""
        privacy = {"drop_fields": self.config.drop_fields, "hash_fields": self.config.hash_fields}
        lines: list[bytes] = []
        records: list[dict[str, Any]] = []
        new_schemas: dict[VersionKey, FeatureSchema] = {}
        for _, record in group:
            key = (str(record["model_name"]), str(record["model_version"]))
            if key not in segment.schemas and key not in new_schemas:
                new_schemas[key] = self._schemas.get(key, self.feature_schema)
                lines.append(schema_line(key, new_schemas[key]))
            private = private_record(record, **privacy, key=self._hash_key)
            records.append(private)
            lines.append(record_line(private))
        try:
            file.append(b"".join(lines), sync=self.durability == "fsync")
        except OSError as exc:
            self._refuse(group, exc)
            return
        segment.schemas.update(new_schemas)
        segment.records.extend(records)
        with self._lock:
            self._problems.pop("wal", None)
            self._stats["fsyncs"] += self.durability == "fsync"
        self._commits.confirm(group[-1][0])

    def _refuse(self, group: list[tuple[int, Mapping[str, Any]]], exc: OSError) -> None:
        reason = str(exc.strerror or exc)
        log.error("prediction log: write-ahead append failed (%s); %d record(s) refused", reason, len(group))
        with self._lock:
            self._problems["wal"] = reason
            self._stats["write_errors"] += 1
            self._stats["rejected_records"] += len(group)
            self._in_memory -= len(group)
        self._commits.refuse(group[0][0], group[-1][0], reason)

    def _close_segment(self, segment: Segment, file: SegmentFile) -> None:
        while True:
            try:
                file.close(sync=self.durability != "fsync")
                break
            except OSError as exc:
                self._problem("wal", exc)
                time.sleep(_RETRY_PAUSE)
        with self._lock:
            if segment.records:
                self._closed_segments.append(segment)
                self._parquet_wake.notify()
        if not segment.records:
            segment.path.unlink(missing_ok=True)

    # ------------------------------------------------------------ the Parquet thread

    def _parquet_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed_segments and not self._wal_done:
                    if time.monotonic() >= self._next_retention:
                        break
                    self._parquet_wake.wait(min(_IDLE_WAKE, max(self._next_retention - time.monotonic(), 0.001)))
                segment = self._closed_segments[0] if self._closed_segments else None
            if segment is None:
                if time.monotonic() >= self._next_retention:
                    self.apply_retention()
                    continue
                return
            try:
                output = self._converter.write(self.directory, self.wal_id, segment, self._arrow_schema_of)
                segment.path.unlink(missing_ok=True)
                fsync_dir(self._wal_folder)
            except Exception as exc:  # a disk error or a bug: keep the segment, retry (nothing is dropped)
                log.exception("prediction log: writing Parquet failed; retrying")
                self._problem("parquet", exc)
                time.sleep(_RETRY_PAUSE)
                continue
            with self._lock:
                self._closed_segments.pop(0)
                self._in_memory -= len(segment.records)
                self._problems.pop("parquet", None)
            self._written(output)

    def _written(self, output: SegmentOutput, *, recovered: bool = False) -> None:
        rows = sum(item.rows for item in output.files)
        with self._lock:
            self._stats["written_records"] += rows
            self._stats["written_files"] += len(output.files)
            self._stats["invalid_records"] += output.invalid
            if recovered:
                self._stats["recovered_records"] += rows + output.invalid
        self._last_flush_at = time.time()
        if self._uploader is not None:
            for item in output.files:
                self._uploader.add(Upload(item.path, item.day, item.model_name, item.model_version))

    def _arrow_schema_for(self, schema: FeatureSchema) -> pa.Schema:
        return log_schema(schema, drop_fields=self.config.drop_fields, hash_fields=self.config.hash_fields)

    def _arrow_schema_of(self, key: VersionKey, schema: FeatureSchema | None) -> pa.Schema:
        """The log schema of one served version, from that version's own feature schema."""
        if key not in self._arrow or schema is not None:
            self._arrow[key] = self._arrow_schema_for(schema or self.feature_schema)
        return self._arrow[key]

    # ------------------------------------------------------------ recovery at start

    def _recover(self) -> None:
        """Convert the segments of writers that are gone (SIGKILL, power loss), then remove their folders."""
        for wal_id, lock in orphaned_wals(self.directory, own=self.wal_id):
            try:
                records = 0
                for number, path in segments_of(self.directory / WAL_DIR / wal_id):
                    segment = read_segment(path, number)
                    output = write_segment(self.directory, wal_id, segment, self._arrow_schema_of)
                    self._written(output, recovered=True)
                    records += len(segment.records)
                    path.unlink()
                log.info("prediction log: recovered %d record(s) from write-ahead folder %s", records, wal_id)
                shutil.rmtree(self.directory / WAL_DIR / wal_id, ignore_errors=True)
            except OSError as exc:
                raise PredictionLogError(f"cannot recover write-ahead folder {wal_id}: {exc}") from exc
            finally:
                lock.release()

    # ------------------------------------------------------------ checks, retention, housekeeping

    def _check_writable(self) -> None:
        try:
            check_writable(self.directory, self.wal_id)
        except OSError as exc:
            raise PredictionLogError(
                f"prediction log directory {self.directory} is not writable: {exc.strerror or exc}"
            ) from exc

    def apply_retention(self, today: date | None = None) -> list[str]:
        """Delete ``date=`` partitions older than ``retention_days``; returns the dates deleted."""
        today = today or datetime.now(UTC).date()
        deleted = delete_old_partitions(self.directory, today=today, retention_days=self.config.retention_days)
        self._count("deleted_partitions", len(deleted))
        self._next_retention = time.monotonic() + _RETENTION_EVERY
        return deleted

    def _count(self, name: str, value: int) -> None:
        with self._lock:
            self._stats[name] += value

    def _problem(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self._problems[where] = str(getattr(exc, "strerror", None) or exc)[:300]
            self._stats["write_errors"] += 1
