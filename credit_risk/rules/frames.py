"""Whole frames against the rules: a decoded frame, and a raw data file decoded by the schema's
source columns and codes; the first broken rule is raised naming the column, the rows and the rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from credit_risk.rules.fields import FieldRule, Rule
from credit_risk.schema import DataValidationError, FeatureSchema, FieldSpec


def _raise_for(spec: FieldSpec, broken: pd.Series, rules: tuple[Rule, ...]) -> None:
    bad = broken >= 0
    if not bad.any():
        return
    index = int(broken[bad].iloc[0])  # the first bad row's rule: its rows are counted and named
    rule = rules[index]
    same = (broken == index).to_numpy()
    count, first = int(same.sum()), same.nonzero()[0]
    also = sorted({rules[int(i)].message for i in broken[bad].unique()} - {rule.message})
    more = f" (also: {'; '.join(also)})" if also else ""
    raise DataValidationError(
        f"column {spec.column!r}: {count} row(s) break the rule: {rule.message}"
        f" (first rows: {first[:5].tolist()}){more}"
    )


def check_frame(schema: FeatureSchema, frame: pd.DataFrame, *, fields: tuple[FieldSpec, ...] | None = None) -> None:
    """Check a decoded frame (field names, codes; None or NaN = missing) against the rules."""
    for spec in fields or schema.fields:
        if spec.name not in frame.columns:
            raise DataValidationError(f"missing column {spec.name!r}")
        rule = FieldRule(spec)
        _raise_for(spec, rule.check_series(frame[spec.name]), rule.rules)


def decode_source_frame(schema: FeatureSchema, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """A raw data file (text columns named by ``source_column``) as (decoded features, label)."""
    expected = [f.column for f in schema.fields] + [schema.target.column]
    absent = [name for name in expected if name not in raw.columns]
    if absent:
        raise DataValidationError(f"missing column(s): {', '.join(absent)}")
    markers = list(schema.missing_values)
    out = pd.DataFrame(index=raw.index)
    for spec in schema.fields:
        column = raw[spec.column].astype("string").str.strip()
        column = column.mask(column.isin(markers) | (column == ""))
        rule = FieldRule(spec)
        if spec.type == "categorical":
            mapping = {source: c.code for c in spec.categories for source in c.sources}
            decoded = column.map(mapping)
            unknown = column.notna() & decoded.isna()
            if unknown.any():
                sources = [s for c in spec.categories for s in c.sources]
                first = unknown.to_numpy().nonzero()[0]
                raise DataValidationError(
                    f"column {spec.column!r}: {int(unknown.sum())} row(s) break the rule: must be one of {sources}"
                    f" or a missing value {markers} (first rows: {first[:5].tolist()})"
                )
            _raise_for(spec, rule.check_series(decoded), rule.rules)
            out[spec.name] = decoded.astype(object).where(decoded.notna(), None)
        else:
            _raise_for(spec, rule.check_series(column), rule.rules)
            values = pd.to_numeric(column).astype(np.float64)
            out[spec.name] = values.astype(np.int64) if spec.type == "integer" and not values.isna().any() else values
    target = raw[schema.target.column].astype("string").str.strip()
    allowed = {schema.target.event, schema.target.non_event}
    bad = ~target.isin(allowed) | target.isna()
    if bad.any():
        first = bad.to_numpy().nonzero()[0]
        raise DataValidationError(
            f"column {schema.target.column!r}: {int(bad.sum())} row(s) break the rule: must be one of "
            f"{sorted(allowed)} (first rows: {first[:5].tolist()})"
        )
    label = (target == schema.target.event).astype(np.int8).rename(schema.target.name)
    return out, label
