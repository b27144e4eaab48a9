"""The write-ahead file: each writer's own folder of JSON-lines segments, locked while it lives.

``<log dir>/_wal/<wal id>/`` holds a ``lock`` file (an exclusive ``flock`` held
by the writing process, released by the kernel even on SIGKILL) and segments
``seg-NNNNNNNNN.jsonl``. A segment holds, per model version, one line with that
version's feature schema, then one line per record (privacy already applied).
Its writer zero-fills ahead of its appends (:class:`SegmentFile`): the first
NUL byte ends what was written (JSON escapes NUL in text, so no line holds one).
A segment becomes Parquet files named after it (``part-<wal id>-<segment>-<k>``)
and is deleted only once they are on disk, so replaying a leftover segment
rewrites the very same files: a record reaches the table exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from credit_risk.private_files import private_descriptor, private_dir
from credit_risk.schema import FeatureSchema

WAL_DIR = "_wal"
LOCK_FILE = "lock"
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_INT64 = 2.0**63  # orjson reads a larger integer as a float
_SEGMENT = re.compile(r"^seg-(\d{9})\.jsonl$")

VersionKey = tuple[str, str]  # (model name, model version)


@dataclass
class Segment:
    """One segment's records in memory, in WAL order, with the schema of every version they name."""

    number: int
    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    schemas: dict[VersionKey, FeatureSchema] = field(default_factory=dict)


def segment_path(folder: Path, number: int) -> Path:
    return folder / f"seg-{number:09d}.jsonl"


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def schema_line(key: VersionKey, schema: FeatureSchema) -> bytes:
    return (json.dumps({"schema": list(key), "fields": schema.model_dump(mode="json")}) + "\n").encode()


def record_line(record: Mapping[str, Any]) -> bytes:
    try:  # orjson: a few microseconds a record, the same text for what a record holds
        return orjson.dumps({"r": record}, default=_json_default, option=_ORJSON) + b"\n"
    except orjson.JSONEncodeError:  # what orjson refuses (an int over 64 bits): the standard library's
        return (json.dumps({"r": record}, default=_json_default, separators=(",", ":")) + "\n").encode()


def _line(raw: bytes) -> Any:
    """One line as ``json.loads`` reads it, in a quarter of its time: orjson, except where orjson reads
    differently (NaN, a lone surrogate: it refuses; an integer over 64 bits, which ``record_line`` writes
    with the standard library: it reads a float)."""
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
    record = item.get("r") if type(item) is dict else None
    if type(record) is dict and any(type(v) is float and abs(v) >= _INT64 for v in record.values()):
        return json.loads(raw)  # maybe an integer orjson turned into a float: read it exactly
    return item


def read_segment(path: Path, number: int) -> Segment:
    """A segment from disk; a torn last line (a write the crash cut, never acknowledged) is ignored."""
    segment = Segment(number, path)
    data = path.read_bytes()
    written = data.find(b"\0")  # the zeros written ahead of the appends
    if written >= 0:
        data = data[:written]
    complete = data[: data.rfind(b"\n") + 1]
    for raw in complete.splitlines():
        item = _line(raw)
        if "schema" in item:
            segment.schemas[tuple(item["schema"])] = FeatureSchema.model_validate(item["fields"])  # type: ignore[index]
        else:
            segment.records.append(item["r"])
    return segment


def segments_of(folder: Path) -> list[tuple[int, Path]]:
    found = []
    with contextlib.suppress(FileNotFoundError):  # another worker recovered and removed it meanwhile
        for path in folder.iterdir():
            match = _SEGMENT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def write_all(descriptor: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written


class SegmentFile:
    """An open segment whose appends overwrite zeros written ahead of them, as PostgreSQL fills its WAL
    segments: the ``fdatasync`` that makes a group durable then flushes the group's data blocks only, not a
    change of the file's size (a journal commit): half the time of a plain append's on this machine's
    disk (``python -m bench.http_bench --durability`` prints both). The file grows by ``ZERO_AHEAD`` at a
    time; durability ``interval`` (no fsync per group) appends without zero-filling."""

    ZERO_AHEAD = 1 << 20

    def __init__(self, path: Path, *, zero_fill: bool) -> None:
        self.descriptor = private_descriptor(path, os.O_RDWR | os.O_CREAT)
        self.end = 0  # what the appends wrote; beyond it, up to ``_filled``, zeros
        self._filled = 0
        self._zero_fill = zero_fill

    def append(self, data: bytes, *, sync: bool) -> None:
        """Write ``data`` after what was written (and ``fdatasync`` when ``sync``); raises :class:`OSError`
        with the file cut back to before ``data``, so a failed group leaves no line."""
        start, end = self.end, self.end + len(data)
        try:
            if self._zero_fill and end > self._filled:  # zeros first, then the data over them: one fdatasync
                filled = end + self.ZERO_AHEAD
                write_all(self.descriptor, bytes(filled - self._filled), self._filled)
                self._filled = filled
            write_all(self.descriptor, data, start)
            if sync:
                os.fdatasync(self.descriptor)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.descriptor, start)
            self._filled = min(self._filled, start)
            raise
        self.end = end

    def cut(self, end: int) -> None:
        """Drop what was written past ``end`` (records whose fdatasync failed: never acknowledged)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self.descriptor, end)
        self.end = self._filled = min(self.end, end)

    def close(self, *, sync: bool) -> None:
        if sync:
            os.fdatasync(self.descriptor)
        os.close(self.descriptor)


class WalLock:
    """The exclusive lock on one WAL folder: held by its writer, taken by whoever recovers it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._descriptor: int | None = None

    def acquire(self, *, create: bool) -> bool:
        """True once held; False when another process holds it (that writer is alive)."""
        if create:
            private_dir(self.folder)
        try:
            descriptor = private_descriptor(self.folder / LOCK_FILE, os.O_RDWR | (os.O_CREAT if create else 0))
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the descriptor drops the flock
            self._descriptor = None
