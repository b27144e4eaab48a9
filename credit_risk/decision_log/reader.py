"""Reading the log: the rows of one model over a window of UTC dates, from one directory or several.

Several directories (``prediction_log.read_directories``: one per instance where instances cannot
share one location) read as one log. A decision is counted once: rows with the same ``request_id``
and ``scored_at`` are one decision written twice (as an older release could leave them when several
instances shared a directory); the first is kept and the number dropped is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from credit_risk.decision_log.paths import PARTITION, PARTITION_DIR
from credit_risk.decision_log.record import COLUMN_TYPES

log = logging.getLogger(__name__)

DECISION_KEY = ("request_id", "scored_at")  # one decision: its request id at its time
_ROW = "__row"

LogDirs = Path | Sequence[Path]  # one log directory, or several read as one log


@dataclass(frozen=True)
class LogRead:
    """The rows read, each decision once, and how many duplicate rows were dropped."""

    table: pa.Table
    duplicates_dropped: int


def read_log(log_dirs: LogDirs, schema: pa.Schema, *, start: date, end: date, model_name: str) -> pa.Table:
    """Rows of one model logged between two UTC dates (inclusive), each decision once."""
    return read_log_counted(log_dirs, schema, start=start, end=end, model_name=model_name).table


def read_log_counted(log_dirs: LogDirs, schema: pa.Schema, *, start: date, end: date, model_name: str) -> LogRead:
    """:func:`read_log` with the number of duplicate rows it dropped."""
    folders = [Path(log_dirs)] if isinstance(log_dirs, str | Path) else [Path(d) for d in log_dirs]
    wanted = schema
    for name in DECISION_KEY:  # the key is read even when the caller does not ask for it
        if name not in schema.names:
            wanted = wanted.append(pa.field(name, COLUMN_TYPES[name]))
    tables = [_read_one(folder, wanted, start=start, end=end, model_name=model_name) for folder in folders]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    table, dropped = drop_duplicates(table)
    if dropped:
        log.warning("decision log: %d duplicate row(s) dropped (same request id and time)", dropped)
    return LogRead(table.select(schema.names), dropped)


def drop_duplicates(table: pa.Table) -> tuple[pa.Table, int]:
    """The table with the first row of each decision (``request_id``, ``scored_at``) only, in order."""
    if table.num_rows == 0:
        return table, 0
    numbered = table.select(list(DECISION_KEY)).append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))
    first = numbered.group_by(list(DECISION_KEY), use_threads=False).aggregate([(_ROW, "min")])
    if first.num_rows == table.num_rows:
        return table, 0
    keep = first[f"{_ROW}_min"]
    return table.take(keep.take(pc.sort_indices(keep))), table.num_rows - first.num_rows


def _read_one(log_dir: Path, schema: pa.Schema, *, start: date, end: date, model_name: str) -> pa.Table:
    """One directory's rows. Files whose names start with ``.`` or ``_`` (temporaries, the salvage) are
    skipped; only the partitions needed are read."""
    if not Path(log_dir).is_dir():
        return schema.empty_table()
    partitioning = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
    # an explicit schema: files written under other privacy settings still read (missing columns are null)
    full = schema.append(pa.field(PARTITION, pa.string()))
    dataset = ds.dataset(log_dir, format="parquet", partitioning=partitioning, schema=full)
    wanted = (
        (ds.field(PARTITION) >= start.isoformat())
        & (ds.field(PARTITION) <= end.isoformat())
        & (ds.field("model_name") == model_name)
    )
    return dataset.to_table(filter=wanted, columns=schema.names)


def log_files(log_dir: Path, *, since: date | None = None) -> list[str]:
    """Every finished log file (of ``since`` and later dates), as ``date=YYYY-MM-DD/name.parquet``
    relative to ``log_dir``, in order.

    A file appears whole (written under a dot-name, then renamed) and never changes afterwards."""
    found: list[str] = []
    root = Path(log_dir)
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        matched = PARTITION_DIR.match(folder.name)
        if not folder.is_dir() or not matched or (since is not None and matched.group(1) < since.isoformat()):
            continue
        for entry in sorted(folder.iterdir()):
            if entry.suffix == ".parquet" and not entry.name.startswith((".", "_")):
                found.append(f"{folder.name}/{entry.name}")
    return found


def read_file_rows(path: Path, columns: list[str], *, decisions: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One log file's rows, with those of ``columns`` the file has (a later column is None in older files);
    with ``decisions``, only the rows whose decision is one of them (filtered before any row becomes Python)."""
    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[name for name in columns if name in present])
    if decisions is not None:
        table = table.filter(pc.is_in(table["decision"], value_set=pa.array(sorted(decisions), pa.string())))
    rows = table.to_pylist()
    for row in rows:
        for name in columns:
            row.setdefault(name, None)
    return rows
