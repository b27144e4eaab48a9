"""The log's record format: one row per scored applicant, fixed columns around the schema's fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from credit_risk.decision_log.record import LEADING_COLUMNS, LOG_SCHEMA_VERSION, NOT_NULL, TRAILING_COLUMNS
from credit_risk.schema import FeatureSchema, FieldSpec

__all__ = [
    "CONVERSION_ERRORS",
    "FIXED_COLUMNS",
    "LEADING_COLUMNS",
    "LOG_SCHEMA_VERSION",
    "NOT_NULL",
    "TRAILING_COLUMNS",
    "arrow_type",
    "log_schema",
    "to_table",
    "utc",
]

# The fixed columns (before and after the schema's fields), their types and which are never null
# come from the one definition of a decision record (credit_risk.decision_log.record).
FIXED_COLUMNS = frozenset(name for name, _ in LEADING_COLUMNS + TRAILING_COLUMNS)

# the exceptions a record that does not fit the schema raises while it is converted
CONVERSION_ERRORS = (pa.ArrowException, TypeError, ValueError, AttributeError, KeyError)


# a schema field's log column (null when not sent): category code, whole number, decimal number
_FIELD_TYPES = {"categorical": pa.string(), "integer": pa.int64(), "number": pa.float64()}


def arrow_type(spec: FieldSpec) -> pa.DataType:
    """The Arrow type of one schema field's column (the one place a field type maps to a column type)."""
    return _FIELD_TYPES[spec.type]


def log_schema(schema: FeatureSchema, *, drop_fields: Sequence[str] = (), hash_fields: Sequence[str] = ()) -> pa.Schema:
    """The Arrow schema of one log row: fixed columns around one typed column per schema field.

    Dropped fields have no column (``applicant_id``, a fixed column, stays: null); hashed fields are
    strings (hex HMAC-SHA256). The version and the privacy settings are in the schema's metadata too.
    """
    fields = [pa.field(name, kind, nullable=name not in NOT_NULL) for name, kind in LEADING_COLUMNS]
    for spec in schema.fields:
        if spec.name in drop_fields:
            continue
        kind = pa.string() if spec.name in hash_fields else arrow_type(spec)
        fields.append(pa.field(spec.name, kind))
    fields += [pa.field(name, kind, nullable=name not in NOT_NULL) for name, kind in TRAILING_COLUMNS]
    private = set(schema.by_name) | {"applicant_id"}  # the fields privacy settings may name
    metadata = {
        "log_schema_version": str(LOG_SCHEMA_VERSION),
        "feature_schema_version": str(schema.version),
        "dropped_fields": json.dumps(sorted(set(drop_fields) & private)),
        "hashed_fields": json.dumps(sorted(set(hash_fields) & private)),
    }
    return pa.schema(fields, metadata=metadata)


def to_table(records: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Records (privacy already applied, see :mod:`credit_risk.decision_log.privacy`) as a table of ``schema``.

    Raises one of :data:`CONVERSION_ERRORS` when a record does not fit.
    """
    columns = []
    for field in schema:
        name = field.name
        if name == "log_schema_version":
            values: list[Any] = [LOG_SCHEMA_VERSION] * len(records)
        elif name == "scored_at":
            values = [utc(r["scored_at"]) for r in records]
        elif name == "reasons":
            values = [[str(code) for code in r.get("reasons") or ()] for r in records]
        else:
            values = [r.get(name) for r in records]
        columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def utc(value: datetime | str) -> datetime:
    """A timezone-aware ``scored_at`` (a datetime or ISO text) in UTC; naive times are refused."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError("scored_at must be timezone-aware (UTC)")
    return value.astimezone(UTC)
