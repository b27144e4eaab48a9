"""What the prediction log recorded about each decision, read through the log's own reader."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from credit_risk.decision_log.reader import LogDirs, read_log, read_log_counted
from credit_risk.decision_log.record import log_columns

# the log columns the outcome checks and the realized figures use
DECISION_COLUMNS = (
    "request_id",
    "applicant_id",
    "scored_at",
    "model_name",
    "model_version",
    "probability",
    "risk_band",
    "decision",
)
_DECISION_SCHEMA = log_columns(*DECISION_COLUMNS)  # a name that is no column of the log fails at import
_KEY_SCHEMA = log_columns("request_id", "scored_at", "model_name")


def decision_schema(extra: pa.Schema | None = None) -> pa.Schema:
    """The decision columns (typed as the log writes them), then ``extra``'s other fields."""
    fields = list(_DECISION_SCHEMA)
    if extra is not None:
        fields += [f for f in extra if f.name not in DECISION_COLUMNS]
    return pa.schema(fields)


def read_decisions(
    log_dir: LogDirs,
    *,
    model_name: str,
    columns: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """Decisions of one model logged between two UTC dates (inclusive; None: unbounded).

    ``schema`` (default: the decision columns) is the read schema: files written
    before a column existed read it as null.
    """
    schema = schema or decision_schema()
    if columns is not None:  # the reader filters on model_name: read it too
        schema = pa.schema([schema.field(name) for name in dict.fromkeys([*columns, "model_name"])])
    table = read_log(log_dir, schema, start=start or date.min, end=end or date.max, model_name=model_name)
    return table.select(columns) if columns is not None else table


def count_duplicates(log_dirs: LogDirs, *, model_name: str, start: date | None = None, end: date | None = None) -> int:
    """How many duplicate rows (one decision written twice) the readers drop in this window."""
    read = read_log_counted(log_dirs, _KEY_SCHEMA, start=start or date.min, end=end or date.max, model_name=model_name)
    return read.duplicates_dropped
