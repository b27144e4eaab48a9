"""The prediction log: one Parquet row per scored applicant, written off the hot path.

The service hands finished records to :meth:`PredictionLogWriter.submit`; a
bounded in-process queue feeds one background thread that appends them to a
hive-partitioned Parquet dataset (``<directory>/date=YYYY-MM-DD/part-*.parquet``,
UTC dates), flushing every ``flush_every_records`` records or
``flush_interval_seconds`` seconds. Each file appears atomically (temporary
dot-name, fsync, rename, fsync of the folder), so a reader never sees half a
file, and its name carries host, pid, a sequence number and a UUID, so several
uvicorn workers never overwrite each other. A second thread copies closed files
to a serving run per model version in MLflow, retrying failures with backoff;
uploads never hold up scoring.

Crash semantics: ``close()`` (on SIGTERM, via the app's shutdown) drains the
queue and flushes everything. After a hard crash (SIGKILL, power loss) the
records not yet flushed are lost: at most ``flush_interval_seconds`` of traffic
(or ``flush_every_records`` records), plus whatever was queued behind them.

Back-pressure: when the queue holds ``queue_max_records``, ``submit`` blocks up
to ``submit_timeout_seconds`` for room, then raises :class:`PredictionLogFullError`
(the service answers 503). Records are never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from credit_risk import registry
from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log.format import CONVERSION_ERRORS, log_schema, to_table
from credit_risk.decision_log.paths import ARTIFACT_DIR, INVALID_DIR, PARTITION, PARTITION_DIR, partition_dir
from credit_risk.decision_log.privacy import PrivacyError, check_privacy, private_record
from credit_risk.schema import FeatureSchema

log = logging.getLogger(__name__)

_MAX_BATCH = 100_000  # records per write at most, whatever has piled up
_RETENTION_EVERY = 24 * 3600.0
_IDLE_WAKE = 60.0  # the writer wakes at least this often to check retention


class PredictionLogError(RuntimeError):
    """The prediction log cannot start or take records; the message says why."""


class PredictionLogFullError(PredictionLogError):
    """The queue stayed full for ``submit_timeout_seconds``: the service should answer 503."""


class PredictionLogClosedError(PredictionLogError):
    """``submit`` after ``close`` (or before ``start``): the service should answer 503."""


@dataclass
class _Upload:
    path: Path
    day: str
    model_name: str
    model_version: str
    attempts: int = 0
    next_try: float = 0.0


class PredictionLogWriter:
    """Bounded queue + background Parquet writer + background MLflow uploader.

    ``submit`` is thread-safe. ``start`` checks the directory (refuses an
    unwritable one), the privacy settings and applies retention; ``close``
    drains and flushes. ``client_factory`` (None: no uploads) is called in the
    uploader thread, so an unreachable registry never delays start.
    """

    def __init__(
        self,
        config: PredictionLogConfig,
        *,
        directory: Path,
        schema: FeatureSchema,
        client_factory: Callable[[], MlflowClient] | None,
        hash_key: str | bytes | SecretStr | None = None,
    ) -> None:
        self.config = config
        self.directory = Path(directory)
        self.feature_schema = schema
        self._client_factory = client_factory if config.upload_artifacts else None
        if isinstance(hash_key, SecretStr):
            hash_key = hash_key.get_secret_value()
        self._hash_key = hash_key.encode() if isinstance(hash_key, str) else hash_key
        self.arrow_schema: pa.Schema | None = None
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here
        self._space = threading.Condition(self._lock)  # full-queue submitters wait here
        self._buffer: list[Mapping[str, Any]] = []
        self._unwritten: list[tuple[tuple[str, str, str], pa.Table]] = []
        self._deadline = 0.0
        self._state = "new"  # new -> running -> closing -> closed
        self._writer: threading.Thread | None = None
        self._uploader: threading.Thread | None = None
        self._uploads: list[_Upload] = []
        self._upload_wake = threading.Condition(threading.Lock())
        self._upload_stop_at: float | None = None
        self._runs: dict[tuple[str, str], str] = {}
        self._client: MlflowClient | None = None
        self._host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"
        self._seq = 0
        self._next_retention = 0.0
        self._stats = {
            "written_records": 0,
            "written_files": 0,
            "write_errors": 0,
            "invalid_records": 0,
            "rejected_records": 0,
            "uploaded_files": 0,
            "upload_failures": 0,
            "deleted_partitions": 0,
        }
        self._last_flush_at: float | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Check the directory and privacy settings, apply retention, start the threads."""
        if self._state != "new":
            raise PredictionLogError("the prediction log writer was already started")
        self.arrow_schema = self._checked_schema()
        self._check_writable()
        self.apply_retention()
        self._remove_stale_temporaries()
        self._state = "running"
        self._writer = threading.Thread(target=self._write_loop, name="prediction-log-writer", daemon=True)
        self._writer.start()
        if self._client_factory is not None:
            self._uploader = threading.Thread(target=self._upload_loop, name="prediction-log-uploader", daemon=True)
            self._uploader.start()
        log.info("prediction log writing to %s (pid %s)", self.directory, os.getpid())

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking records, write everything queued, give pending uploads one last try."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._state in ("new", "closed"):
                self._state = "closed"
                return
            self._state = "closing"
            self._work.notify_all()
            self._space.notify_all()
        if self._writer is not None:
            self._writer.join(max(deadline - time.monotonic(), 0.0))
            if self._writer.is_alive():
                log.error("prediction log: %d record(s) not written within %.1fs of close", self.queued, timeout)
        if self._uploader is not None:
            with self._upload_wake:
                self._upload_stop_at = deadline
                self._upload_wake.notify_all()
            self._uploader.join(max(deadline - time.monotonic(), 0.0))
        with self._upload_wake:
            if self._uploads:
                log.warning("prediction log: %d file(s) not uploaded to MLflow (kept locally)", len(self._uploads))
        self._state = "closed"

    @property
    def queued(self) -> int:
        """Records accepted and not yet on disk."""
        return self._pending()

    def _pending(self) -> int:
        return len(self._buffer) + sum(part.num_rows for _, part in self._unwritten)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics``: queued, written, rejected, uploads pending and failed."""
        with self._lock:
            out: dict[str, Any] = {"queued": self._pending(), **self._stats}
        with self._upload_wake:
            out["uploads_pending"] = len(self._uploads)
        out["last_flush_at"] = self._last_flush_at
        out["running"] = self._state == "running"
        return out

    # ------------------------------------------------------------ submit (request threads)

    def submit(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing; blocks while the queue is full (back-pressure).

        Raises :class:`PredictionLogFullError` after ``submit_timeout_seconds``
        without room, :class:`PredictionLogClosedError` when not running.
        """
        if not records:
            return
        count = len(records)
        limit = self.config.queue_max_records
        give_up = time.monotonic() + self.config.submit_timeout_seconds
        with self._lock:
            # a single submission larger than the whole queue is let in once the queue is empty
            while self._state == "running" and self._pending() and self._pending() + count > limit:
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    self._stats["rejected_records"] += count
                    raise PredictionLogFullError(
                        f"prediction log queue full ({self._pending()} records) for "
                        f"{self.config.submit_timeout_seconds}s: not scored, retry later"
                    )
                self._space.wait(remaining)
            if self._state != "running":
                raise PredictionLogClosedError("the prediction log is not running")
            first = not self._buffer
            if first:
                self._deadline = time.monotonic() + self.config.flush_interval_seconds
            self._buffer.extend(records)
            # wake the writer when its deadline starts (it sleeps long while idle) or the batch is full
            if first or len(self._buffer) >= self.config.flush_every_records:
                self._work.notify()

    # ------------------------------------------------------------ checks at start

    def _checked_schema(self) -> pa.Schema:
        try:
            check_privacy(self.config, self.feature_schema, self._hash_key)
        except PrivacyError as exc:
            raise PredictionLogError(str(exc)) from None
        return log_schema(self.feature_schema, drop_fields=self.config.drop_fields, hash_fields=self.config.hash_fields)

    def _check_writable(self) -> None:
        probe = self.directory / f".probe-{self._host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise PredictionLogError(
                f"prediction log directory {self.directory} is not writable: {exc.strerror or exc}"
            ) from exc

    # ------------------------------------------------------------ retention

    def apply_retention(self, today: date | None = None) -> list[str]:
        """Delete ``date=`` partitions older than ``retention_days``; returns the dates deleted."""
        today = today or datetime.now(UTC).date()
        oldest_kept = today - timedelta(days=self.config.retention_days)
        deleted = []
        with contextlib.suppress(FileNotFoundError):
            for child in self.directory.iterdir():
                match = PARTITION_DIR.match(child.name)
                if not match or not child.is_dir():
                    continue
                with contextlib.suppress(ValueError):
                    if date.fromisoformat(match.group(1)) < oldest_kept:
                        # another worker may be deleting the same folder: ignore what has gone
                        shutil.rmtree(child, ignore_errors=True)
                        deleted.append(match.group(1))
        if deleted:
            log.info("prediction log retention: deleted partitions %s", deleted)
        self._stats["deleted_partitions"] += len(deleted)
        self._next_retention = time.monotonic() + _RETENTION_EVERY
        return deleted

    def _remove_stale_temporaries(self) -> None:
        """Temporary files a crashed process of this host left behind (readers skip them anyway)."""
        pattern = re.compile(rf"^\.part-{re.escape(self._host)}-(\d+)-.*\.tmp$")
        for path in self.directory.glob("date=*/.part-*.tmp"):
            match = pattern.match(path.name)
            if match and not _alive(int(match.group(1))):
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while self._state == "running" and not self._due() and time.monotonic() < self._next_retention:
                    wait = self._deadline if self._buffer else time.monotonic() + _IDLE_WAKE
                    self._work.wait(max(min(wait, self._next_retention) - time.monotonic(), 0.001))
                batch = self._buffer[:_MAX_BATCH]
                del self._buffer[:_MAX_BATCH]
                if self._buffer:
                    self._deadline = time.monotonic()  # more piled up: write it next, no waiting
                stopping = self._state != "running"
            try:
                if self._unwritten:
                    self._retry_unwritten()
                if batch:
                    self._write_batch(batch)
            except Exception:  # a bug must not kill the thread and leave records queued silently
                log.exception("prediction log: unexpected error while writing; retrying")
                with self._lock:
                    self._stats["write_errors"] += 1
                    self._buffer[:0] = batch
                    self._deadline = time.monotonic()
                time.sleep(0.5)
            with self._lock:
                self._space.notify_all()
                if stopping and not self._buffer and not self._unwritten:
                    return
            if time.monotonic() >= self._next_retention:
                self.apply_retention()

    def _due(self) -> bool:
        if self._unwritten:
            return True
        return bool(self._buffer) and (
            len(self._buffer) >= self.config.flush_every_records or time.monotonic() >= self._deadline
        )

    def _write_batch(self, batch: list[Mapping[str, Any]]) -> None:
        try:
            table = self._to_table(batch)
        except CONVERSION_ERRORS as exc:
            table = self._salvage(batch, exc)
        with self._lock:
            # converted rows still count against the queue bound until they are on disk
            self._unwritten.extend(self._partitions(table))
        self._retry_unwritten()

    def _retry_unwritten(self) -> None:
        """Write the converted parts; on a disk error keep the rest for the next turn (nothing is dropped)."""
        while self._unwritten:
            (day, name, version), part = self._unwritten[0]
            try:
                path = self._write_file(day, part)
            except OSError as exc:
                log.error("prediction log: write failed (%s); retrying", exc)
                with self._lock:
                    self._stats["write_errors"] += 1
                time.sleep(0.5)
                return
            with self._lock:
                self._unwritten.pop(0)
                self._stats["written_records"] += part.num_rows
            self._last_flush_at = time.time()
            self._queue_upload(_Upload(path, day, name, version))

    def _to_table(self, batch: Sequence[Mapping[str, Any]]) -> pa.Table:
        assert self.arrow_schema is not None
        privacy = {"drop_fields": self.config.drop_fields, "hash_fields": self.config.hash_fields}
        return to_table([private_record(r, **privacy, key=self._hash_key) for r in batch], self.arrow_schema)

    def _salvage(self, batch: Sequence[Mapping[str, Any]], exc: Exception) -> pa.Table:
        """A batch with a record that does not fit the schema: write the others, set the bad ones aside.

        Bad records go to ``_invalid/*.jsonl`` (ignored by readers of the
        dataset) with the error, so nothing vanishes silently.
        """
        log.error("prediction log: a batch has records that do not fit the log schema: %s", exc)
        good, bad = [], []
        for record in batch:
            try:
                good.append(self._to_table([record]))
            except CONVERSION_ERRORS as err:
                bad.append({"error": str(err), "record": record})
        if bad:
            folder = self.directory / INVALID_DIR
            folder.mkdir(exist_ok=True)
            with (folder / f"invalid-{self._host}-{os.getpid()}.jsonl").open("a") as handle:
                for item in bad:
                    handle.write(json.dumps(item, default=str) + "\n")
            with self._lock:
                self._stats["invalid_records"] += len(bad)
        assert self.arrow_schema is not None
        return pa.concat_tables(good) if good else self.arrow_schema.empty_table()

    def _partitions(self, table: pa.Table) -> list[tuple[tuple[str, str, str], pa.Table]]:
        """Split by UTC date and model version: each file belongs to one partition and one serving run."""
        if table.num_rows == 0:
            return []
        day_column = table.column("scored_at").cast(pa.date32())
        columns = (day_column, table.column("model_name"), table.column("model_version"))
        if all(pc.count_distinct(column).as_py() == 1 for column in columns):  # the usual case: one file
            return [((day_column[0].as_py().isoformat(), columns[1][0].as_py(), columns[2][0].as_py()), table)]
        keys = list(
            zip(
                (d.isoformat() for d in day_column.to_pylist()),
                columns[1].to_pylist(),
                columns[2].to_pylist(),
                strict=True,
            )
        )
        groups: dict[tuple[str, str, str], list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(key, []).append(index)
        return [(key, table.take(pa.array(rows))) for key, rows in groups.items()]

    def _write_file(self, day: str, table: pa.Table) -> Path:
        """Temporary dot-name (readers skip it), fsync, rename, fsync the folder: all or nothing."""
        folder = partition_dir(self.directory, day)
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"part-{self._host}-{os.getpid()}-{self._seq:09d}-{uuid.uuid4().hex[:12]}.parquet"
        final, temporary = folder / name, folder / f".{name}.tmp"
        try:
            with temporary.open("wb") as handle:
                pq.write_table(table, handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        with self._lock:
            self._stats["written_files"] += 1
        return final

    # ------------------------------------------------------------ the uploader thread

    def _queue_upload(self, item: _Upload) -> None:
        if self._client_factory is None:
            return
        with self._upload_wake:
            self._uploads.append(item)
            self._upload_wake.notify()

    def _upload_loop(self) -> None:
        while True:
            with self._upload_wake:
                stopping = self._upload_stop_at is not None
                if stopping and (not self._uploads or time.monotonic() >= self._upload_stop_at):
                    return
                ready = [u for u in self._uploads if stopping or u.next_try <= time.monotonic()]
                if not ready:
                    next_try = min((u.next_try for u in self._uploads), default=time.monotonic() + _IDLE_WAKE)
                    self._upload_wake.wait(max(next_try - time.monotonic(), 0.01))
                    continue
                item = ready[0]
            ok = self._upload(item)
            with self._upload_wake:
                if ok or (stopping and item.attempts > 0 and self._upload_stop_at is not None):
                    # on the way out each file gets one last try; what fails stays local only
                    self._uploads.remove(item)

    def _upload(self, item: _Upload) -> bool:
        try:
            if self._client is None:
                assert self._client_factory is not None
                self._client = self._client_factory()
            run_key = (item.model_name, item.model_version)
            if run_key not in self._runs:
                self._runs[run_key] = registry.serving_run_id(
                    self._client,
                    experiment=self.config.serving_experiment,
                    model_name=item.model_name,
                    model_version=item.model_version,
                )
            registry.log_artifact_file(
                self._client, self._runs[run_key], item.path, f"{ARTIFACT_DIR}/{PARTITION}={item.day}"
            )
        except Exception as exc:  # any failure of the registry is retried, never raised
            item.attempts += 1
            item.next_try = time.monotonic() + min(2.0**item.attempts, self.config.upload_retry_max_seconds)
            with self._lock:
                self._stats["upload_failures"] += 1
            log.warning("prediction log: upload of %s failed (attempt %d): %s", item.path.name, item.attempts, exc)
            return False
        with self._lock:
            self._stats["uploaded_files"] += 1
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
