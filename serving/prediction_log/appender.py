"""The write-ahead side of the prediction log: segments, appends, and the fsync child's answers.

Records are appended to the open segment in one write per group (into the page
cache), and, with ``durability: fsync``, a ``SYNC`` request goes to the fsync
child (:mod:`serving.prediction_log.syncer`); its answer confirms the group's
tickets. A segment is handed to the child when it opens (with a sync of the
folder that names it) and closed by it once full or old enough; the answer to
that ``CLOSE`` hands its records to Parquet. An append that fails, or an
``fdatasync`` that fails, refuses the records it had not confirmed and cuts them
from the file: a refused request is answered 503 and its record never reaches
the table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log.privacy import private_record
from credit_risk.schema import FeatureSchema
from serving.prediction_log.commits import Commits
from serving.prediction_log.syncer import CLOSE, OPEN, SYNC, SYNC_DIR, Answer, Syncer
from serving.prediction_log.wal import Segment, SegmentFile, VersionKey, record_line, schema_line, segment_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """A record as the write-ahead file holds it: privacy applied, its line, its model version."""

    key: VersionKey
    record: dict[str, Any]
    line: bytes


Group = list[tuple[int, Encoded]]  # (ticket, record), in ticket order


@dataclass(eq=False)
class _Open:
    """A segment being appended to (or closing): its file, and what its last answered fdatasync covered."""

    segment: Segment
    file: SegmentFile
    closes_at: float
    confirmed: tuple[int, int, int]  # (ticket, bytes, records) on disk for sure
    last_ticket: int = 0  # the last ticket appended to it
    failed: bool = False  # an fdatasync failed: what it had not confirmed was refused and cut off
    closing: int = 0  # CLOSE requests not answered yet (a cut after a failure asks for one more)


@dataclass(frozen=True)
class Ledger:
    """What the write-ahead side tells its writer (called under the writer's lock)."""

    refused: Callable[[int, str], None]  # (records, reason): not logged, must not be answered
    problem: Callable[[str], None]  # a write error that refused nothing (yet)
    healthy: Callable[[], None]  # a write went through: the last error is over
    closed: Callable[[Segment], None]  # a closed segment, synced, for Parquet
    opened: Callable[[], None]  # a segment opened: the writer's thread closes it on time


class WriteAhead:
    """This writer's segments. Not thread-safe: the writer calls every method under its lock."""

    def __init__(
        self,
        config: PredictionLogConfig,
        folder: Path,
        *,
        hash_key: bytes | None,
        schema_of: Callable[[VersionKey], FeatureSchema],
        commits: Commits,
        ledger: Ledger,
    ) -> None:
        self.config = config
        self.folder = folder
        self.syncer = Syncer(group_commit_ms=config.group_commit_ms)
        self._hash_key = hash_key
        self._schema_of = schema_of
        self._commits = commits
        self._ledger = ledger
        self._fsync = config.durability == "fsync"
        self._current: _Open | None = None  # the segment appended to
        self._segments: dict[int, _Open] = {}  # opened, their CLOSE not answered yet
        self._number = 0  # the last segment's number

    @property
    def closes_at(self) -> float | None:
        """When the open segment is due to close (None: none is open)."""
        return self._current.closes_at if self._current is not None else None

    @property
    def pending(self) -> bool:
        """Whether a segment is open or closing (its records not handed to Parquet yet)."""
        return bool(self._segments)

    def encode(self, records: list[dict[str, Any]]) -> list[Encoded]:
        """The records as the write-ahead file holds them (privacy applied); needs no lock."""
        privacy = {"drop_fields": self.config.drop_fields, "hash_fields": self.config.hash_fields}
        encoded = []
        for record in records:
            private = private_record(record, **privacy, key=self._hash_key)
            key = (str(record["model_name"]), str(record["model_version"]))
            encoded.append(Encoded(key, private, record_line(private)))
        return encoded

    def append(self, group: Group) -> None:
        """One write into the page cache for the group, then (``fsync``) one request to the fsync child."""
        try:
            current = self._current or self._open_segment(group[0][0] - 1)
        except OSError as exc:
            self.refuse(group, exc)
            return
        lines: list[bytes] = []
        new_schemas: dict[VersionKey, FeatureSchema] = {}
        segment = current.segment
        for _, item in group:
            if item.key not in segment.schemas and item.key not in new_schemas:
                new_schemas[item.key] = self._schema_of(item.key)
                lines.append(schema_line(item.key, new_schemas[item.key]))
            lines.append(item.line)
        try:
            current.file.append(b"".join(lines), sync=False)
        except OSError as exc:
            self.refuse(group, exc)
            self.close_current()  # the next group goes to a new file
            return
        segment.schemas.update(new_schemas)
        segment.records.extend(item.record for _, item in group)
        current.last_ticket = group[-1][0]
        if self._fsync:
            token = (current.last_ticket, current.file.end, len(segment.records))
            self.syncer.request(SYNC, segment.number, token=token)
        else:
            self._ledger.healthy()
        if len(segment.records) >= self.config.flush_every_records:
            self.close_current()

    def close_current(self) -> None:
        """No more appends to the open segment: the child syncs and closes its copy, then Parquet takes it."""
        current, self._current = self._current, None
        if current is not None:
            current.closing += 1
            self.syncer.request(CLOSE, current.segment.number)

    def settle(self, answers: list[Answer]) -> int:
        """Apply the fsync child's answers; returns the last ticket now on disk (0: none)."""
        upto = 0
        for answer in answers:
            try:
                upto = self._settle(answer) or upto
            except Exception:  # a bug or an OS error while applying one answer: the others still apply
                log.exception("prediction log: applying the fsync process's answer %s failed", answer)
        return upto

    def _settle(self, answer: Answer) -> int:
        if answer.op == SYNC_DIR:
            with contextlib.suppress(OSError):
                os.close(answer.token)  # the folder's descriptor, kept open until answered
        opened = self._segments.get(answer.number)
        if opened is None or answer.op == OPEN:
            return 0
        upto = 0
        if answer.error and self._fsync:
            self._sync_failed(opened, answer.error)
        elif answer.error:  # interval: these records were answered without waiting; keep them
            self._ledger.problem(f"fdatasync failed: {os.strerror(answer.error)}")
        elif answer.op == SYNC and not opened.failed:
            opened.confirmed = answer.token
            upto = answer.token[0]
            self._ledger.healthy()
        if answer.op == CLOSE:
            opened.closing -= 1
            if not opened.closing:
                self._closed(opened)
        return upto

    def _open_segment(self, before: int) -> _Open:
        """A new segment (``before``: the last ticket before its first), handed to the fsync child with a
        request to sync the folder that now names it."""
        self._number += 1
        path = segment_path(self.folder, self._number)
        file = SegmentFile(path, zero_fill=self._fsync)
        try:
            folder = os.open(self.folder, os.O_RDONLY)
        except OSError:
            file.close(sync=False)
            raise
        closes_at = time.monotonic() + self.config.flush_interval_seconds
        opened = _Open(Segment(self._number, path), file, closes_at, (before, 0, 0), before)
        self._segments[self._number] = self._current = opened
        self.syncer.request(OPEN, self._number, descriptor=file.descriptor)
        self.syncer.request(SYNC_DIR, self._number, descriptor=folder, token=folder)
        self._ledger.opened()
        return opened

    def _sync_failed(self, opened: _Open, error: int) -> None:
        """An fdatasync failed: what it had not confirmed is refused and cut from the file (never answered)."""
        reason = f"fdatasync failed: {os.strerror(error)}"
        if opened.failed:
            self._ledger.problem(reason)
            return
        opened.failed = True
        ticket, end, kept = opened.confirmed
        refused = len(opened.segment.records) - kept
        if refused:
            log.error("prediction log: %s; %d record(s) refused", reason, refused)
            del opened.segment.records[kept:]
            opened.file.cut(end)
            self._ledger.refused(refused, reason)
        else:
            self._ledger.problem(reason)
        if opened.last_ticket > ticket:
            self._commits.refuse(ticket + 1, opened.last_ticket, reason)
        if opened is self._current:
            self.close_current()  # its CLOSE, asked after the cut, makes the cut durable
        elif refused:  # closing already, maybe synced before the cut: once more, after it
            opened.closing += 1
            self.syncer.request(OPEN, opened.segment.number, descriptor=opened.file.descriptor)
            self.syncer.request(CLOSE, opened.segment.number)

    def _closed(self, opened: _Open) -> None:
        """The child synced and closed its copy: this process closes its own, Parquet takes the records."""
        del self._segments[opened.segment.number]
        opened.file.close(sync=False)
        if opened.segment.records:
            self._ledger.closed(opened.segment)
        else:
            opened.segment.path.unlink(missing_ok=True)

    def refuse(self, group: Group, exc: Exception) -> None:
        """The group is not logged: its requests fail (503)."""
        reason = str(getattr(exc, "strerror", None) or exc)
        log.error("prediction log: write-ahead append failed (%s); %d record(s) refused", reason, len(group))
        self._ledger.refused(len(group), reason)
        self._commits.refuse(group[0][0], group[-1][0], reason)
