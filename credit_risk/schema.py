"""The feature schema: names, types, categories, ranges, labels, protected flags.

Defined once in ``config/features.yaml`` and logged with every registered model
version. The API's request model, the UI's form, the encoder and the drift
monitor are all derived from the copy that travels with the served model.
"""

from __future__ import annotations

import itertools
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # the frames are checked in credit_risk.rules: pandas is not imported for the schema alone
    import pandas as pd


class DataValidationError(ValueError):
    """A data file breaks the schema; the message names the column, the rows and the rule."""


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
    label: str = Field(min_length=1)
    source: str | tuple[str, ...] = Field(min_length=1)  # the file's value(s) for this category

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else self.source


FieldType = Literal["categorical", "integer", "number"]


class RecourseRule(BaseModel):
    """What an applicant could change in a field, for "what would change the decision" (recourse).

    ``immutable``: never changes (age, a history already recorded); ``increase`` / ``decrease``: may move
    only that way, within ``min``/``max`` (numeric fields) or along ``order`` (a categorical field's codes,
    lowest first; a value outside the order never changes). A field without a rule is not used.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["immutable", "increase", "decrease"]
    min: float | None = None
    max: float | None = None
    order: tuple[str, ...] | None = None

    @property
    def sign(self) -> int:
        return {"increase": 1, "decrease": -1}.get(self.action, 0)


NOT_PROVIDED = "not provided"  # how a missing optional value reads, in reasons and forms


class FieldSpec(BaseModel):
    """One applicant field: its declaration. The rules derived from it are :mod:`credit_risk.rules`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    reason_code: str = Field(min_length=1, max_length=8)
    source_column: str | None = Field(None, min_length=1)  # the data file's column; default: the name
    required: bool = True  # false: the value may be missing (absent or null in the API)
    protected: bool = False
    categories: tuple[Category, ...] = ()
    min: int | float | None = None  # ints for integer fields, floats for number fields (see _numbers)
    max: int | float | None = None
    default: int | float | None = None
    monotone: Literal["increasing", "decreasing"] | None = None
    group_edges: tuple[float, ...] | None = None  # protected numeric field: fairness groups cut at these values
    # a coded integer field: what each value means ("1": "0 to 2", "2": "3 or more"), one label per value
    # from min to max; the form offers the labels and every page shows them
    value_labels: dict[int, str] | None = None
    recourse: RecourseRule | None = None  # what the applicant could change (default: not used for recourse)

    @model_validator(mode="before")
    @classmethod
    def _numbers(cls, data: Any) -> Any:
        # a number field's bounds are floats and an integer field's are ints, as its values are
        if isinstance(data, dict) and data.get("type") in ("integer", "number"):
            data = dict(data)
            for key in ("min", "max", "default"):
                value = data.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    if data["type"] == "number":
                        data[key] = float(value)
                    elif float(value).is_integer():
                        data[key] = int(value)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "categorical":
            if len(self.categories) < 2:
                raise ValueError(f"{self.name}: a categorical field needs at least two categories")
            codes = [c.code for c in self.categories]
            if len(set(codes)) != len(codes):
                raise ValueError(f"{self.name}: category codes must be unique")
            sources = [s for c in self.categories for s in c.sources]
            if len(set(sources)) != len(sources):
                raise ValueError(f"{self.name}: a source value maps to one category only")
            numeric_only = (self.min, self.max, self.monotone, self.default, self.group_edges, self.value_labels)
            if any(v is not None for v in numeric_only):
                raise ValueError(f"{self.name}: min, max, default, monotone and group_edges apply to numeric fields")
            return self
        if self.min is None or self.max is None or self.min > self.max:
            raise ValueError(f"{self.name}: a numeric field needs min <= max")
        if self.value_labels is not None:
            if self.type != "integer":
                raise ValueError(f"{self.name}: value_labels apply to integer fields only")
            expected = list(range(int(self.min), int(self.max) + 1))
            if sorted(self.value_labels) != expected or not all(str(v).strip() for v in self.value_labels.values()):
                raise ValueError(f"{self.name}: value_labels need one non-empty label for each value {expected}")
        if self.categories:
            raise ValueError(f"{self.name}: categories apply to categorical fields only")
        if self.default is not None and not self.min <= self.default <= self.max:
            raise ValueError(f"{self.name}: default outside [min, max]")
        if self.type == "integer" and any(
            v is not None and not float(v).is_integer() for v in (self.min, self.max, self.default)
        ):
            raise ValueError(f"{self.name}: an integer field's min, max and default are whole numbers")
        if self.group_edges is not None:
            if not self.protected:
                raise ValueError(f"{self.name}: group_edges apply to protected fields only")
            if not self.group_edges or list(self.group_edges) != sorted(set(self.group_edges)):
                raise ValueError(f"{self.name}: group_edges must be increasing")
        elif self.protected:
            raise ValueError(f"{self.name}: a protected numeric field needs group_edges (its fairness groups)")
        return self

    @model_validator(mode="after")
    def _recourse_rule(self) -> FieldSpec:
        rule = self.recourse
        if rule is None or rule.action == "immutable":
            return self
        where = f"{self.name}: recourse"
        if self.protected:
            raise ValueError(f"{where}: a protected field never changes (use action: immutable or leave it out)")
        if self.type == "categorical":
            if rule.min is not None or rule.max is not None:
                raise ValueError(f"{where}: min and max apply to numeric fields; a categorical field declares order")
            order = rule.order or ()
            if len(order) < 2 or len(set(order)) != len(order) or not set(order) <= set(self.codes):
                raise ValueError(f"{where}: order must list at least two of the field's codes, each once, lowest first")
            return self
        if rule.order is not None:
            raise ValueError(f"{where}: order applies to categorical fields")
        assert self.min is not None and self.max is not None
        low = self.min if rule.min is None else rule.min
        high = self.max if rule.max is None else rule.max
        if not self.min <= low <= high <= self.max:
            raise ValueError(f"{where}: min and max must lie within the field's range [{self.min}, {self.max}]")
        if self.monotone_sign and self.monotone_sign == rule.sign:
            # the model is constrained so that this direction can only raise the risk: no recourse in it
            raise ValueError(f"{where}: {rule.action} raises the risk under the field's monotone constraint")
        return self

    def recourse_bounds(self) -> tuple[float, float]:
        """A numeric field's range for recourse: the rule's bounds within the field's own."""
        assert self.min is not None and self.max is not None
        rule = self.recourse
        low = self.min if rule is None or rule.min is None else rule.min
        high = self.max if rule is None or rule.max is None else rule.max
        return float(low), float(high)

    @property
    def column(self) -> str:
        """The field's column in a data file."""
        return self.source_column or self.name

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def is_numeric(self) -> bool:
        return self.type != "categorical"

    @property
    def monotone_sign(self) -> int:
        return {"increasing": 1, "decreasing": -1}.get(self.monotone or "", 0)

    def describe_value(self, value: object) -> str:
        """A human reading of one of this field's values."""
        if value is None:
            return NOT_PROVIDED
        if self.value_labels and isinstance(value, int | float) and float(value).is_integer():
            label = self.value_labels.get(int(value))
            if label is not None:
                return label
        for category in self.categories:
            if category.code == value:
                return category.label
        return str(value)

    def group_labels(self) -> list[str]:
        """Names of the fairness groups of a protected numeric field: under e0, e0 to e1, ..., ek and over."""
        edges = [_plain(e) for e in self.group_edges or ()]
        if not edges:
            return []
        step = 1 if self.type == "integer" else 0
        labels = [f"under {edges[0]}"]
        labels += [f"{lo} to {_plain(hi - step) if step else hi}" for lo, hi in itertools.pairwise(edges)]
        return [*labels, f"{edges[-1]} and over"]


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class TargetSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    event: str
    non_event: str
    source_column: str | None = Field(None, min_length=1)

    @property
    def column(self) -> str:
        return self.source_column or self.name


class FeatureSchema(BaseModel):
    """The applicant record's contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    target: TargetSpec
    missing_values: tuple[str, ...] = ("",)  # values a data file uses for "not provided"
    fields: tuple[FieldSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FeatureSchema:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        columns = [f.column for f in self.fields] + [self.target.column]
        if len(set(columns)) != len(columns):
            raise ValueError("each field and the target need their own column in the data file")
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
        """A valid applicant: each field's default, or its first category (or the range's low end)."""
        record: dict[str, object] = {}
        for f in self.fields:
            if f.type == "categorical":
                record[f.name] = f.codes[0]
            else:
                value = f.default if f.default is not None else f.min
                record[f.name] = int(value) if f.type == "integer" else value  # type: ignore[arg-type]
        return record

    # ------------------------------------------------------------ data files

    def decode_source_frame(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """Check a raw data file (read as text) against the schema and return (features, label).

        Columns are found by ``source_column``; the schema's ``missing_values``
        read as missing; category values are mapped from the file's ``source``
        values to codes; numbers are checked against their range; the label is
        1 for the event. Raises :class:`DataValidationError` naming the column,
        the rows affected and the rule broken.
        """
        from credit_risk.rules import decode_source_frame

        return decode_source_frame(self, raw)

    def check_frame(self, frame: pd.DataFrame, *, fields: tuple[FieldSpec, ...] | None = None) -> None:
        """Check an already-decoded frame (codes, not source strings; None or NaN = missing)."""
        from credit_risk.rules import check_frame

        check_frame(self, frame, fields=fields)
