"""The served model's feature schema as the UI reads it, and the rules of one entered value.

The UI builds its form and its CSV pre-check from the schema JSON that
``GET /v1/model`` answers, not from a copy in its own code. The reading is
tolerant on purpose: a newer service may send keys this UI does not know
(they are ignored) and field types it does not know (refused with a clear
message). Field types: ``categorical`` (codes with labels), ``integer`` and
``number`` (a decimal, with ``min`` and ``max``); ``required: false`` makes a
field optional, sent as JSON null when not provided. A schema without
``required`` keeps the older rule: model inputs are required, protected
fields optional.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from credit_risk.rules import NUMBER_PATTERN, REQUIRED, FieldRule, RuleError
from credit_risk.schema import Category, FieldSpec

FIELD_TYPES = ("categorical", "integer", "number")
_NUMBER_TEXT = re.compile(NUMBER_PATTERN)  # the rule table's: a value shown unquoted in a message
# "Instalment burden (1-4)": the range belongs to the form's rule, not to a sentence about the applicant.
_RANGE_HINT = re.compile(r"\s*\(\s*-?\d+(?:\.\d+)?\s*(?:-|–|to)\s*-?\d+(?:\.\d+)?\s*\)\s*$")


def plain_label(label: str) -> str:
    """A label without a trailing range hint: "Instalment burden (1-4)" -> "Instalment burden"."""
    return _RANGE_HINT.sub("", label) or label


class SchemaError(ValueError):
    """The service's schema cannot be read into a form."""


@dataclass(frozen=True)
class Choice:
    code: str
    label: str


@dataclass(frozen=True)
class FormField:
    """One applicant field: what a person reads, what the API takes, and the rule."""

    name: str
    type: str
    label: str
    description: str
    reason_code: str
    protected: bool
    required: bool
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    default: Any = None
    # a coded integer field: (value, what it means) for each value from min to max (feature schema's value_labels)
    value_labels: tuple[tuple[int, str], ...] = ()
    # the rule table's verdict and wording for a value (credit_risk.rules): the API's, batch's and training's
    checker: FieldRule | None = field(default=None, compare=False, repr=False)

    @property
    def plain_label(self) -> str:
        return plain_label(self.label)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.choices)

    def label_of(self, code: Any) -> str:
        for choice in self.choices:
            if choice.code == code:
                return choice.label
        for value, label in self.value_labels:
            if isinstance(code, int | float | str) and str(code).strip() in (str(value), f"{value}.0"):
                return label
        return str(code)

    @property
    def range_text(self) -> str:
        """ "1 to 120" for a number field."""
        return f"{_number_text(self.min)} to {_number_text(self.max)}"

    @property
    def rule(self) -> str:
        """The rule in words, as the form and the CSV check state it."""
        if self.type == "categorical":
            return "one of: " + "; ".join(c.label for c in self.choices)
        kind = "a whole number" if self.type == "integer" else "a number"
        return f"{kind} from {self.range_text}"

    @property
    def example(self) -> Any:
        """A valid value: the schema's default, else the middle choice or the lower bound."""
        if self.default is not None:
            return self.default
        if self.type == "categorical":
            return self.codes[0]
        return int(self.min) if self.type == "integer" else self.min  # type: ignore[arg-type]

    def parse_text(self, text: Any) -> tuple[Any, str | None]:
        """A typed or uploaded value -> (API value, None), or (None, the broken rule and the value).

        Blank is "not provided": None for an optional field, "Enter a value: it is required" otherwise. Categories are
        taken by code or, when unambiguous, by label (any case). The verdict and its wording are the
        rule table's (:mod:`credit_risk.rules`), as the API, batch scoring and training give them.
        """
        raw = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text).strip()
        if raw == "":
            return None, None if not self.required else REQUIRED.tell()
        value = (self._code_for(raw) or raw) if self.type == "categorical" else raw
        assert self.checker is not None, "a FormField is made by read_schema"
        try:
            return self.checker.parse_text(value, missing_values=()), None
        except RuleError as exc:
            return None, exc.rule.tell(raw)

    def _code_for(self, raw: str) -> str | None:
        if raw in self.codes:
            return raw
        folded = raw.casefold()
        by_code = [c.code for c in self.choices if c.code.casefold() == folded]
        by_label = [c.code for c in self.choices if c.label.casefold() == folded]
        matches = set(by_code) | set(by_label)
        return matches.pop() if len(matches) == 1 else None


def _number_text(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}".replace(",", " ") if float(value).is_integer() and abs(value) >= 10_000 else f"{value:g}"


@dataclass(frozen=True)
class FormSchema:
    fields: tuple[FormField, ...]

    @property
    def by_name(self) -> dict[str, FormField]:
        return {f.name: f for f in self.fields}

    @property
    def inputs(self) -> tuple[FormField, ...]:
        """The model's inputs (every field that is not protected)."""
        return tuple(f for f in self.fields if not f.protected)

    @property
    def protected_fields(self) -> tuple[FormField, ...]:
        return tuple(f for f in self.fields if f.protected)

    def example_record(self) -> dict[str, Any]:
        return {f.name: f.example for f in self.fields}

    def labels(self) -> dict[str, str]:
        """Field name -> plain label, for headings and sentences."""
        return {f.name: f.plain_label for f in self.fields}


def _field(raw: Mapping[str, Any]) -> FormField:
    try:
        name, kind = str(raw["name"]), str(raw["type"])
    except KeyError as exc:
        raise SchemaError(f"a field has no {exc.args[0]!r}") from None
    if kind not in FIELD_TYPES:
        raise SchemaError(f"field {name!r} has type {kind!r}, which this UI cannot show ({', '.join(FIELD_TYPES)})")
    protected = bool(raw.get("protected", False))
    choices = tuple(
        Choice(code=str(c["code"]), label=str(c.get("label") or c["code"])) for c in raw.get("categories") or ()
    )
    if kind == "categorical" and not choices:
        raise SchemaError(f"categorical field {name!r} has no categories")
    if kind != "categorical" and (raw.get("min") is None or raw.get("max") is None):
        raise SchemaError(f"field {name!r} has no min or max")
    required = (bool(raw["required"]) if raw.get("required") is not None else True) and not protected
    return FormField(
        checker=_checker(raw, name, required),
        name=name,
        type=kind,
        label=str(raw.get("label") or name),
        description=str(raw.get("description") or ""),
        reason_code=str(raw.get("reason_code") or ""),
        protected=protected,
        # protected fields are never model inputs: the API takes them absent or null, whatever `required` says
        required=required,
        choices=choices,
        min=raw.get("min"),
        max=raw.get("max"),
        default=raw.get("default"),
        value_labels=_value_labels(raw.get("value_labels")),
    )


def _value_labels(raw: Any) -> tuple[tuple[int, str], ...]:
    """A coded field's labels, by value (JSON gives the keys as text)."""
    if not isinstance(raw, Mapping):
        return ()
    try:
        return tuple(sorted((int(value), str(label)) for value, label in raw.items()))
    except (TypeError, ValueError):
        return ()


def _checker(raw: Mapping[str, Any], name: str, required: bool) -> FieldRule:
    """The field's rules from the rule table, on the keys this UI knows (a newer service's others are ignored)."""
    known = {k: v for k, v in raw.items() if k in FieldSpec.model_fields and k != "source_column"}
    categories = [
        {"source": c.get("code"), **{k: v for k, v in c.items() if k in Category.model_fields}}
        for c in raw.get("categories") or ()
        if isinstance(c, Mapping)
    ]
    known.update(
        categories=categories,
        required=required,
        label=str(raw.get("label") or name),
        description=str(raw.get("description") or raw.get("label") or name),
        reason_code=str(raw.get("reason_code") or "X")[:8],
    )
    try:
        return FieldRule(FieldSpec.model_validate(known))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise SchemaError(f"field {name!r}: {first['msg']}") from None


def read_schema(info: Mapping[str, Any]) -> FormSchema:
    """The form's schema from a ``GET /v1/model`` answer; :class:`SchemaError` when it has none."""
    schema = info.get("feature_schema") if isinstance(info, Mapping) else None
    fields: Sequence[Any] = schema.get("fields") if isinstance(schema, Mapping) else None  # type: ignore[assignment]
    if not fields:
        raise SchemaError("/v1/model sent no feature_schema with fields")
    return FormSchema(tuple(_field(f) for f in fields))
