"""What the prediction log recorded about each decision, for outcome checks and joins."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

PARTITION = "date"

# the log columns the outcome checks and the realized figures use
DECISION_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("request_id", pa.string()),
    ("applicant_id", pa.string()),
    ("scored_at", pa.timestamp("us", tz="UTC")),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("probability", pa.float64()),
    ("risk_band", pa.string()),
    ("decision", pa.string()),
)


def decision_schema(extra: pa.Schema | None = None) -> pa.Schema:
    fields = [pa.field(name, kind) for name, kind in DECISION_COLUMNS]
    if extra is not None:
        fields += [f for f in extra if f.name not in {name for name, _ in DECISION_COLUMNS}]
    return pa.schema(fields)


def read_decisions(
    log_dir: Path,
    *,
    columns: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    model_name: str | None = None,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """Decisions logged between two UTC dates (inclusive; None: unbounded), only the partitions needed.

    ``schema`` (default: the decision columns) is the read schema: files written
    before a column existed read it as null.
    """
    schema = schema or decision_schema()
    names = columns or schema.names
    if not Path(log_dir).is_dir():
        return schema.empty_table().select(names)
    partitioning = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
    dataset = ds.dataset(
        log_dir, format="parquet", partitioning=partitioning, schema=schema.append(pa.field(PARTITION, pa.string()))
    )
    wanted = None
    for condition in (
        ds.field(PARTITION) >= start.isoformat() if start else None,
        ds.field(PARTITION) <= end.isoformat() if end else None,
        ds.field("model_name") == model_name if model_name else None,
    ):
        if condition is not None:
            wanted = condition if wanted is None else wanted & condition
    return dataset.to_table(filter=wanted, columns=names)
