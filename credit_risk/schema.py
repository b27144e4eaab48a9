"""The feature schema: names, types, categories, ranges, labels, protected flags.

Defined once in ``config/features.yaml`` and logged with every registered model
version. The API's request model, the UI's form, the encoder and the drift
monitor are all derived from the copy that travels with the served model.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataValidationError(ValueError):
    """A data file breaks the schema; the message names the column, the rows and the rule."""


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
    label: str = Field(min_length=1)
    source: str = Field(min_length=1)


class FieldSpec(BaseModel):
    """One applicant field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["categorical", "integer"]
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    reason_code: str = Field(min_length=1, max_length=8)
    protected: bool = False
    categories: tuple[Category, ...] = ()
    min: int | None = None
    max: int | None = None
    default: int | None = None
    monotone: Literal["increasing", "decreasing"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "categorical":
            if len(self.categories) < 2:
                raise ValueError(f"{self.name}: a categorical field needs at least two categories")
            codes = [c.code for c in self.categories]
            if len(set(codes)) != len(codes):
                raise ValueError(f"{self.name}: category codes must be unique")
            if self.min is not None or self.max is not None or self.monotone is not None:
                raise ValueError(f"{self.name}: min, max and monotone apply to integer fields only")
        else:
            if self.min is None or self.max is None or self.min > self.max:
                raise ValueError(f"{self.name}: an integer field needs min <= max")
            if self.categories:
                raise ValueError(f"{self.name}: categories apply to categorical fields only")
            if self.default is not None and not self.min <= self.default <= self.max:
                raise ValueError(f"{self.name}: default outside [min, max]")
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def monotone_sign(self) -> int:
        return {"increasing": 1, "decreasing": -1}.get(self.monotone or "", 0)

    def describe_value(self, value: object) -> str:
        """A human reading of one of this field's values."""
        for category in self.categories:
            if category.code == value:
                return category.label
        return str(value)


class TargetSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    event: str
    non_event: str


class FeatureSchema(BaseModel):
    """The applicant record's contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    target: TargetSpec
    fields: tuple[FieldSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FeatureSchema:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        codes = [f.reason_code for f in self.fields]
        if len(set(codes)) != len(codes):
            raise ValueError("reason codes must be unique")
        if not any(not f.protected for f in self.fields):
            raise ValueError("at least one field must be a model input (not protected)")
        return self

    @cached_property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    @cached_property
    def inputs(self) -> tuple[FieldSpec, ...]:
        """The fields the model uses: every field that is not protected."""
        return tuple(f for f in self.fields if not f.protected)

    @cached_property
    def protected_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.protected)

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def read(cls, path: Path) -> FeatureSchema:
        return cls.model_validate(json.loads(Path(path).read_text()))

    def example_record(self) -> dict[str, object]:
        """A valid applicant: each field's default, or its first category."""
        return {
            f.name: (f.codes[0] if f.type == "categorical" else (f.default if f.default is not None else f.min))
            for f in self.fields
        }

    # ------------------------------------------------------------ data files

    def decode_source_frame(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """Check a raw data file against the schema and return (features, label).

        Category values are mapped from the file's ``source`` strings to codes;
        integers are checked against their range; the label is 1 for the event.
        Raises :class:`DataValidationError` naming the column, the number of
        rows affected and the rule broken.
        """
        expected = [f.name for f in self.fields] + [self.target.name]
        missing = [name for name in expected if name not in raw.columns]
        if missing:
            raise DataValidationError(f"missing column(s): {', '.join(missing)}")
        out = pd.DataFrame(index=raw.index)
        for spec in self.fields:
            out[spec.name] = _decode_column(spec, raw[spec.name])
        target = raw[self.target.name].astype("string")
        allowed = {self.target.event, self.target.non_event}
        bad = ~target.isin(allowed) | target.isna()
        if bad.any():
            raise DataValidationError(f"column {self.target.name!r}: {int(bad.sum())} row(s) not in {sorted(allowed)}")
        label = (target == self.target.event).astype(np.int8).rename(self.target.name)
        return out, label

    def check_frame(self, frame: pd.DataFrame, *, fields: tuple[FieldSpec, ...] | None = None) -> None:
        """Check an already-decoded frame (codes, not source strings) against the schema."""
        for spec in fields or self.fields:
            if spec.name not in frame.columns:
                raise DataValidationError(f"missing column {spec.name!r}")
            column = frame[spec.name]
            if spec.type == "categorical":
                _raise_for(spec, ~column.isin(spec.codes) | column.isna(), f"must be one of {list(spec.codes)}")
            else:
                values = pd.to_numeric(column, errors="coerce")
                _raise_for(spec, values.isna(), "must be an integer")
                _raise_for(spec, (values % 1) != 0, "must be a whole number")
                _raise_for(spec, (values < spec.min) | (values > spec.max), f"must be in [{spec.min}, {spec.max}]")


def _raise_for(spec: FieldSpec, mask: pd.Series, rule: str) -> None:
    count = int(mask.sum())
    if count:
        first = mask.to_numpy().nonzero()[0][:5].tolist()
        raise DataValidationError(f"column {spec.name!r}: {count} row(s) break the rule: {rule} (first rows: {first})")


def _decode_column(spec: FieldSpec, column: pd.Series) -> pd.Series:
    if spec.type == "categorical":
        mapping = {c.source: c.code for c in spec.categories}
        decoded = column.astype("string").map(mapping)
        _raise_for(spec, decoded.isna(), f"must be one of {[c.source for c in spec.categories]}")
        return decoded.astype(str)
    values = pd.to_numeric(column, errors="coerce")
    _raise_for(spec, values.isna(), "must be an integer")
    _raise_for(spec, (values % 1) != 0, "must be a whole number")
    _raise_for(spec, (values < spec.min) | (values > spec.max), f"must be in [{spec.min}, {spec.max}]")
    return values.astype(np.int64)
