"""The prediction log writer's background side: closed segments to Parquet, dead writers' files, retention.

A part of :class:`~serving.prediction_log.writer.PredictionLogWriter` (its base class), kept apart from the
request side (submit, the write-ahead appends and their fsyncs): the Parquet thread turns each closed
segment into files (:mod:`serving.prediction_log.converter`) and deletes it, takes over the segments of
writers that are dead (:func:`~serving.prediction_log.takeover.take_over`) every ``lease_seconds``, and
cuts every copy of the log at ``retention_days``. The attributes it uses are the writer's, set in its
``__init__``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log import retention as log_retention
from credit_risk.decision_log.format import log_schema
from credit_risk.private_files import fsync_dir
from credit_risk.schema import FeatureSchema
from serving.prediction_log.converter import Converter
from serving.prediction_log.errors import PredictionLogError
from serving.prediction_log.files import SegmentOutput
from serving.prediction_log.housekeeping import check_writable
from serving.prediction_log.takeover import take_over
from serving.prediction_log.uploads import Upload, Uploader
from serving.prediction_log.wal import Segment, VersionKey

log = logging.getLogger("serving.prediction_log.writer")  # the writer's: its log lines keep one logger name

_RETENTION_EVERY = 24 * 3600.0
IDLE_WAKE = 60.0  # seconds a thread of the writer sleeps at most when nothing is due
_RETRY_PAUSE = 0.5


class ParquetSide:
    """The Parquet thread, recovery of dead writers' files, retention and the writer's error counts."""

    config: PredictionLogConfig
    directory: Path
    wal_id: str
    feature_schema: FeatureSchema
    _lock: threading.RLock
    _parquet_wake: threading.Condition
    _closed_segments: list[Segment]
    _wal_done: bool
    _wal_folder: Path
    _in_memory: int
    _problems: dict[str, str]
    _stats: dict[str, int]
    _arrow: dict[VersionKey, pa.Schema]
    _converter: Converter
    _uploader: Uploader | None
    _retention: log_retention.RetentionTargets
    _remote_pass: threading.Thread | None
    _next_retention: float
    _next_takeover: float
    _last_flush_at: float | None

    # ------------------------------------------------------------ the Parquet thread

    def _parquet_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed_segments and not self._wal_done:
                    due = min(self._next_retention, self._next_takeover)
                    if time.monotonic() >= due:
                        break
                    self._parquet_wake.wait(min(IDLE_WAKE, max(due - time.monotonic(), 0.001)))
                segment = self._closed_segments[0] if self._closed_segments else None
            if segment is None:
                if time.monotonic() >= self._next_retention:
                    self.apply_retention()
                    continue
                if time.monotonic() >= self._next_takeover and not self._wal_done:
                    self._recover(at_start=False)
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

    def _recover(self, *, at_start: bool) -> None:
        """Take over the files of writers that are dead (:func:`take_over`); at start a failure stops the
        start, later it is logged and tried again ``lease_seconds`` on."""
        self._next_takeover = time.monotonic() + self.config.lease_seconds
        try:
            take_over(
                self.directory,
                own=self.wal_id,
                lease_seconds=self.config.lease_seconds,
                arrow_schema=self._arrow_schema_of,
                written=functools.partial(self._written, recovered=True),
            )
        except Exception as exc:
            if at_start and isinstance(exc, OSError):
                raise PredictionLogError(str(exc)) from exc
            if at_start:
                raise
            log.exception("prediction log: taking over a dead writer's files failed; tried again later")

    # ------------------------------------------------------------ checks, retention, housekeeping

    def _check_writable(self) -> None:
        try:
            check_writable(self.directory, self.wal_id)
        except OSError as exc:
            raise PredictionLogError(
                f"prediction log directory {self.directory} is not writable: {exc.strerror or exc}"
            ) from exc

    def apply_retention(self, today: date | None = None) -> list[str]:
        """Delete every copy of decisions older than ``retention_days``: the local ones now, the MLflow copies
        on a thread of their own (a slow registry never holds up the start or the Parquet thread); returns the
        log partitions deleted."""
        today = today or datetime.now(UTC).date()
        days = self.config.retention_days
        report = log_retention.apply_retention(self._retention, today=today, retention_days=days, remote=False)
        self._count("deleted_partitions", len(report.partitions))
        self._next_retention = time.monotonic() + _RETENTION_EVERY
        if self._retention.client_factory is not None and not (self._remote_pass and self._remote_pass.is_alive()):
            self._remote_pass = threading.Thread(
                target=log_retention.delete_old_mlflow_copies,
                args=(self._retention,),
                kwargs={"today": today, "retention_days": days},
                name="prediction-log-retention",
                daemon=True,
            )
            self._remote_pass.start()
        return report.partitions

    def _count(self, name: str, value: int) -> None:
        with self._lock:
            self._stats[name] += value

    def _problem(self, where: str, exc: BaseException | str) -> None:
        with self._lock:
            self._problems[where] = str(getattr(exc, "strerror", None) or exc)[:300]
            self._stats["write_errors"] += 1
