"""Reading the log: the rows of one model over a window of UTC dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from credit_risk.decision_log.paths import PARTITION, PARTITION_DIR


def read_log(log_dir: Path, schema: pa.Schema, *, start: date, end: date, model_name: str) -> pa.Table:
    """Rows of one model logged between two UTC dates (inclusive); only the partitions needed are read.

    Files whose names start with ``.`` or ``_`` (temporaries, the salvage) are skipped.
    """
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


def read_file_rows(path: Path, columns: list[str]) -> list[dict[str, Any]]:
    """One log file's rows, with those of ``columns`` the file has (a later column is None in older files)."""
    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[name for name in columns if name in present])
    rows = table.to_pylist()
    for row in rows:
        for name in columns:
            row.setdefault(name, None)
    return rows
