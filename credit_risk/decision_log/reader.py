"""Reading the log: the rows of one model over a window of UTC dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from credit_risk.decision_log.paths import PARTITION


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
