"""One field's rules, derived from its schema declaration, asked of a value, a text cell, a pandas
or Arrow column and a Spark column expression alike (see the package)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credit_risk.schema import FeatureSchema, FieldSpec

# A decimal number as text; anything else in a numeric field is "not a number".
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule a value can break: a stable type code, the API's wording and the words for people
    (what a page asks the person to do: "enter a whole number from 1 to 120")."""

    type: str
    message: str
    words: str = ""

    def tell(self, entered: str | None = None) -> str:
        """The rule as a request to a person, with what they entered: "Enter ... (you entered 500)"."""
        text = self.words or self.message
        text = text[:1].upper() + text[1:]
        return f"{text} (you entered {entered})" if entered not in (None, "") else text


REQUIRED = Rule("missing", "is required", "enter a value: it is required")
NOT_INTEGER = Rule("int_type", "must be an integer", "enter a whole number")
NOT_WHOLE = Rule("int_type", "must be a whole number", "enter a whole number")
NOT_NUMBER = Rule("float_type", "must be a number", "enter a number")


class RuleError(ValueError):
    """A value breaks ``rule``."""

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule.message)
        self.rule = rule


@dataclass(frozen=True)
class ArrowCheck:
    """A field's verdict on an Arrow column.

    ``values``: per row, the category's index (categorical, -1 when missing)
    or the number (numeric, NaN when missing); bad rows hold 0. ``bad`` is
    None when every row is valid, else a mask, with ``rule`` indexing
    :attr:`FieldRule.rules` per row.
    """

    values: np.ndarray
    bad: np.ndarray | None = None
    rule: np.ndarray | None = None


class FieldRule:
    """The rules of one field, for every kind of input."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.type
        self.required = spec.required
        self.codes = spec.codes
        self.min = spec.min
        self.max = spec.max
        if spec.type == "categorical":
            labels = "; ".join(category.label for category in spec.categories)
            self.not_category = Rule("literal_error", f"must be one of {list(spec.codes)}", f"choose one of: {labels}")
        else:
            bounds = f"must be in [{plain_number(spec.min)}, {plain_number(spec.max)}]"
            kind = "a whole number" if spec.type == "integer" else "a number"
            words = f"enter {kind} from {plain_number(spec.min)} to {plain_number(spec.max)}"
            self.below = Rule("greater_than_equal", bounds, words)
            self.above = Rule("less_than_equal", bounds, words)
        self._code_set = frozenset(spec.codes)
        self._categorical = spec.type == "categorical"
        self._integer = spec.type == "integer"
        self._number = spec.type == "number"  # a float is its own value here

    @cached_property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule of this field, in the order they are checked."""
        if self.kind == "categorical":
            return (REQUIRED, self.not_category)
        if self.kind == "integer":
            return (REQUIRED, NOT_INTEGER, NOT_WHOLE, self.below, self.above)
        return (REQUIRED, NOT_NUMBER, self.below, self.above)

    # ------------------------------------------------------------ one value

    def parse(self, value: Any) -> Any:
        """A JSON value (or a form's) as the API takes it, or :class:`RuleError`.

        None is missing: allowed (returned as None) only when the field is not
        required. Integers are strict (no "3", no true, no 1.5; 24.0 is 24, as
        in JSON Schema); numbers take any finite JSON number.
        """
        # the valid values a request sends, judged first in as few steps as they take (once per field
        # per request); anything else, and every refusal, is judged and worded by _parse_any
        kind = type(value)
        if kind is str:
            if self._categorical and value in self._code_set:
                return value
        elif kind is int and not self._categorical and self.min <= value <= self.max:  # type: ignore[operator]
            return value if self._integer else float(value)
        elif kind is float and self._number and self.min <= value <= self.max:  # type: ignore[operator]
            return value
        return self._parse_any(value)

    def _parse_any(self, value: Any) -> Any:
        if value is None:
            if self.required:
                raise RuleError(REQUIRED)
            return None
        if self.kind == "categorical":
            if type(value) is str and value in self._code_set:
                return value
            raise RuleError(self.not_category)
        if type(value) is bool or not isinstance(value, int | float):
            raise RuleError(NOT_INTEGER if self.kind == "integer" else NOT_NUMBER)
        if isinstance(value, float) and not math.isfinite(value):
            raise RuleError(NOT_INTEGER if self.kind == "integer" else NOT_NUMBER)
        if self.kind == "integer":
            if isinstance(value, float):
                if not value.is_integer():
                    raise RuleError(NOT_WHOLE)
                value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float64: no number field's range holds it
                raise RuleError(NOT_NUMBER) from None
        if value < self.min:  # type: ignore[operator]
            raise RuleError(self.below)
        if value > self.max:  # type: ignore[operator]
            raise RuleError(self.above)
        return value

    def check(self, value: Any) -> str | None:
        """The broken rule's message for a JSON or form value, or None when it is valid."""
        try:
            self.parse(value)
        except RuleError as exc:
            return exc.rule.message
        return None

    def parse_text(self, text: Any, missing_values: tuple[str, ...] = ("",)) -> Any:
        """A data file's cell (text, as a CSV gives it) as the API value, or :class:`RuleError`.

        Blank cells and the schema's missing markers are missing.
        """
        if text is None or (isinstance(text, float) and math.isnan(text)):
            return self.parse(None)
        text = str(text).strip()
        if text == "" or text in missing_values:
            return self.parse(None)
        if self.kind == "categorical":
            return self.parse(text)
        if not _is_number_text(text):
            raise RuleError(NOT_INTEGER if self.kind == "integer" else NOT_NUMBER)
        return self.parse(float(text))

    def check_text(self, text: Any, missing_values: tuple[str, ...] = ("",)) -> str | None:
        """The broken rule's message for a text cell, or None when it is valid."""
        try:
            self.parse_text(text, missing_values)
        except RuleError as exc:
            return exc.rule.message
        return None

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the field's API value (OpenAPI)."""
        if self.kind == "categorical":
            schema: dict[str, Any] = {"type": "string", "enum": list(self.codes)}
        else:
            schema = {
                "type": self.kind,
                "minimum": plain_number(self.min),
                "maximum": plain_number(self.max),
            }
        if not self.required:
            return {"anyOf": [schema, {"type": "null"}]}
        return schema

    # ------------------------------------------------------------ columns

    def check_series(self, column: pd.Series) -> pd.Series:
        """Per row of a decoded frame, the index of the first broken rule in :attr:`rules`, or -1."""
        broken = pd.Series(-1, index=column.index, dtype=np.int8)
        missing = column.isna()
        if self.required:
            broken[missing] = 0
        present = ~missing
        if self.kind == "categorical":
            broken[present & ~column.isin(self.codes)] = 1
            return broken
        values = pd.to_numeric(column, errors="coerce").astype(np.float64)
        values = values.where(np.isfinite(values))
        not_number = present & values.isna()
        ok = present & ~not_number
        rules = list(self.rules)
        broken[not_number] = rules.index(NOT_INTEGER if self.kind == "integer" else NOT_NUMBER)
        if self.kind == "integer":
            fractional = ok & ((values % 1) != 0)
            broken[fractional] = rules.index(NOT_WHOLE)
            ok &= ~fractional
        broken[ok & (values < self.min)] = rules.index(self.below)
        broken[ok & (values > self.max)] = rules.index(self.above)
        return broken

    def check_arrow(self, column: pa.Array) -> ArrowCheck:
        """The field's verdict on an Arrow column (text from CSV, or typed from Parquet)."""
        if self.kind == "categorical":
            return self._categorical_arrow(column)
        return self._numeric_arrow(column)

    def _categorical_arrow(self, column: pa.Array) -> ArrowCheck:
        codes = pa.array(self.codes, type=pa.string())
        if pa.types.is_dictionary(column.type):
            # look up the few distinct values once, then map the row indices
            lookup = pc.index_in(column.dictionary.cast(pa.string()), value_set=codes).fill_null(-2).to_numpy()
            index = lookup[column.indices.fill_null(0).to_numpy(zero_copy_only=False)]
        else:
            text = column if pa.types.is_string(column.type) else column.cast(pa.string())
            index = np.array(pc.index_in(text, value_set=codes).fill_null(-2), dtype=np.intp)
        if column.null_count:
            index[column.is_null().to_numpy(zero_copy_only=False)] = -1
        bad = (index == -2) | ((index == -1) & self.required)
        index[index == -2] = -1
        if not bad.any():
            return ArrowCheck(index)
        rule = np.ones(len(index), dtype=np.int8)
        rule[self._missing_mask(column)] = 0
        index[bad] = 0
        return ArrowCheck(index, bad, rule)

    @staticmethod
    def _missing_mask(column: pa.Array) -> np.ndarray:
        if not column.null_count:
            return np.zeros(len(column), dtype=bool)
        return column.is_null().to_numpy(zero_copy_only=False)

    def _numeric_arrow(self, column: pa.Array) -> ArrowCheck:
        kind = column.type
        if pa.types.is_integer(kind) and not column.null_count:
            values = column.to_numpy()
            if not ((values < self.min) | (values > self.max)).any():  # the common case: one pass, no copies
                return ArrowCheck(values)
        n = len(column)
        missing = self._missing_mask(column)
        if pa.types.is_integer(kind):
            number = column.fill_null(0).to_numpy().astype(np.float64)
            not_number = np.zeros(n, dtype=bool)
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            number = np.array(column.cast(pa.float64()).fill_null(0.0), dtype=np.float64)
            not_number = ~np.isfinite(number)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text = pc.utf8_trim_whitespace(column)
            is_number = pc.fill_null(pc.match_substring_regex(text, NUMBER_PATTERN), False)
            number = np.array(pc.cast(pc.if_else(is_number, text, "0"), pa.float64()), dtype=np.float64)
            not_number = ~is_number.to_numpy(zero_copy_only=False) | ~np.isfinite(number)
        else:
            number = np.zeros(n)
            not_number = np.ones(n, dtype=bool)
        not_number &= ~missing
        ok = ~(missing | not_number)
        fractional = ok & (np.mod(number, 1.0) != 0) if self.kind == "integer" else np.zeros(n, dtype=bool)
        below = ok & ~fractional & (number < self.min)
        above = ok & ~fractional & (number > self.max)
        bad = (missing & self.required) | not_number | fractional | below | above
        number[missing] = np.nan
        if not bad.any():
            return ArrowCheck(number)
        number[bad] = 0.0
        rules = list(self.rules)
        conditions = [missing, not_number, below, above]
        choices = [0, 1, rules.index(self.below), rules.index(self.above)]
        if self.kind == "integer":
            conditions.insert(2, fractional)
            choices.insert(2, rules.index(NOT_WHOLE))
        rule = np.select(conditions, choices, default=0).astype(np.int8)
        return ArrowCheck(number, bad, rule)

    def spark_rule(self, value: Any) -> Any:
        """A Spark column holding the message of the first rule ``value`` (a column) breaks, or null."""
        from pyspark.sql import functions as F  # noqa: N812

        missing = value.isNull()
        start = F.when(missing, F.lit(REQUIRED.message)) if self.required else F.when(missing, F.lit(None))
        if self.kind == "categorical":
            return start.when(~value.cast("string").isin(list(self.codes)), F.lit(self.not_category.message))
        text = F.trim(value.cast("string"))
        number = text.cast("double")
        is_number = text.rlike(NUMBER_PATTERN) & number.isNotNull() & ~F.isnan(number)
        is_number &= (number != float("inf")) & (number != float("-inf"))
        expression = start.when(
            ~is_number, F.lit(NOT_INTEGER.message if self.kind == "integer" else NOT_NUMBER.message)
        )
        if self.kind == "integer":
            expression = expression.when(number % 1 != 0, F.lit(NOT_WHOLE.message))
        return expression.when(number < self.min, F.lit(self.below.message)).when(
            number > self.max, F.lit(self.above.message)
        )


def plain_number(value: float | None) -> int | float | None:
    """1.0 as 1 (bounds and messages read as the file wrote them), 0.5 as 0.5."""
    return int(value) if value is not None and float(value).is_integer() else value


def _is_number_text(text: str) -> bool:
    return _NUMBER.match(text) is not None


# ------------------------------------------------------------------ whole schemas


def field_rules(schema: FeatureSchema) -> dict[str, FieldRule]:
    """Every field's rules, in schema order."""
    return {spec.name: FieldRule(spec) for spec in schema.fields}


def rules_from_json(schema_json: Mapping[str, Any] | str) -> dict[str, FieldRule]:
    """The rules of a published feature schema (``GET /v1/model``'s ``feature_schema``, or its JSON text)."""
    if isinstance(schema_json, str):
        return field_rules(FeatureSchema.model_validate_json(schema_json))
    return field_rules(FeatureSchema.model_validate(dict(schema_json)))
