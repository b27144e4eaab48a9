"""From a WAL segment to Parquet files: one file per (UTC date, model version), named after the segment.

Each file appears atomically (temporary dot-name, fsync, rename, fsync of the
folder). Its name depends only on the WAL id, the segment number and the
partition's rank, so converting the same segment again (after a crash between
the rename and the segment's deletion) overwrites the same files: exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.decision_log.format import CONVERSION_ERRORS, to_table, utc
from credit_risk.decision_log.paths import INVALID_DIR, partition_dir
from credit_risk.private_files import atomic_write
from credit_risk.schema import FeatureSchema
from serving.prediction_log.wal import Segment, VersionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    day: str
    model_name: str
    model_version: str
    rows: int


@dataclass(frozen=True)
class SegmentOutput:
    files: list[WrittenFile]
    invalid: int


def file_name(wal_id: str, segment: int, rank: int) -> str:
    return f"part-{wal_id}-{segment:09d}-{rank:03d}.parquet"


def write_segment(
    directory: Path,
    wal_id: str,
    segment: Segment,
    arrow_schema: Callable[[VersionKey, FeatureSchema | None], pa.Schema],
) -> SegmentOutput:
    """Write a segment's records as Parquet files (records that do not fit go to ``_invalid/``)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    bad: list[dict[str, Any]] = []
    for record in segment.records:
        try:
            key = (utc(record["scored_at"]).date().isoformat(), str(record["model_name"]), str(record["model_version"]))
        except CONVERSION_ERRORS as exc:
            bad.append({"error": f"scored_at/model: {exc}", "record": record})
            continue
        groups.setdefault(key, []).append(record)
    files = []
    for rank, ((day, name, version), rows) in enumerate(sorted(groups.items())):
        schema = arrow_schema((name, version), segment.schemas.get((name, version)))
        table, rejected = _convert(rows, schema)
        bad.extend(rejected)
        if table.num_rows == 0:
            continue
        metadata = {**(table.schema.metadata or {}), b"model_name": name.encode(), b"model_version": version.encode()}
        path = _write_file(partition_dir(directory, day), file_name(wal_id, segment.number, rank), table, metadata)
        files.append(WrittenFile(path, day, name, version, table.num_rows))
    if bad:
        _write_invalid(directory / INVALID_DIR / f"invalid-{wal_id}-{segment.number:09d}.jsonl", bad)
    return SegmentOutput(files, len(bad))


def _convert(rows: list[dict[str, Any]], schema: pa.Schema) -> tuple[pa.Table, list[dict[str, Any]]]:
    try:
        return to_table(rows, schema), []
    except CONVERSION_ERRORS as exc:
        log.error("prediction log: records that do not fit the log schema: %s", exc)
    good, bad = [], []
    for row in rows:
        try:
            good.append(to_table([row], schema))
        except CONVERSION_ERRORS as err:
            bad.append({"error": str(err), "record": row})
    return (pa.concat_tables(good) if good else schema.empty_table()), bad


def _write_file(folder: Path, name: str, table: pa.Table, metadata: dict[bytes, bytes]) -> Path:
    """All or nothing (:func:`~credit_risk.private_files.atomic_write`: a temporary of its own, so two
    hosts taking the same dead writer over never write into one file)."""
    table = table.replace_schema_metadata(metadata)
    return atomic_write(folder / name, lambda handle: pq.write_table(table, handle, compression="zstd"))


def _write_invalid(path: Path, bad: list[dict[str, Any]]) -> None:
    """The salvage of one segment, written whole (records already went through the privacy settings)."""
    text = "".join(json.dumps(item, default=str) + "\n" for item in bad)
    atomic_write(path, lambda handle: handle.write(text), mode="w")
