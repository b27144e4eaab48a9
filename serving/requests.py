"""Request models generated from the served model's own feature schema.

Each model version carries its schema; the service validates against that
copy, so a new version with a new category or range is validated by its own
rules the moment it is swapped in. The rules and their wording are the
schema's rule table (:mod:`credit_risk.rules`): unknown fields refused,
required inputs must be sent, optional fields (``required: false``) and
protected fields may be absent or null, categoricals are one of the schema's
codes, integers are strict JSON integers (no 1.5, no "3", no true, no NaN or
Infinity; 24.0 is 24, as in JSON Schema), numbers any finite JSON number,
each within the schema's range.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from credit_risk.rules import FieldRule, RuleError, plain_number
from credit_risk.schema import FeatureSchema, FieldSpec
from serving.errors import InvalidInputError, MalformedBodyError, problem, problems_from_pydantic


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key are ambiguous (parsers disagree on which wins): refuse.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


def load_json(body: bytes) -> Any:
    """Parse a request body: 400 when it is not JSON, 422 naming a duplicated key."""
    if not body:
        raise MalformedBodyError("the request body is empty: expected a JSON object")
    try:
        # decode first: json.loads(bytes) would also take UTF-16/32, and the contract is UTF-8
        return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise InvalidInputError(
            [problem(["body", exc.key], "duplicate key in the JSON object", "duplicate_key")]
        ) from None
    except RecursionError:
        raise MalformedBodyError("the JSON body is nested too deeply") from None
    except UnicodeDecodeError:
        raise MalformedBodyError("the request body is not valid UTF-8") from None
    except ValueError as exc:  # JSONDecodeError, and integers with more digits than Python converts
        raise MalformedBodyError(f"the request body is not valid JSON: {str(exc)[:200]}") from None


def _validator(rule: FieldRule) -> Any:
    def validate(value: Any) -> Any:
        try:
            return rule.parse(value)
        except RuleError as exc:
            raise PydanticCustomError(exc.rule.type, exc.rule.message) from None

    return validate


def _field_type(rule: FieldRule) -> Any:
    return Annotated[Any, BeforeValidator(_validator(rule)), WithJsonSchema(rule.json_schema())]


def _description(spec: FieldSpec) -> str:
    text = spec.description
    if spec.type == "categorical":
        text += " Codes: " + "; ".join(f"`{c.code}`: {c.label}" for c in spec.categories) + "."
    else:
        kind = "Whole number" if spec.type == "integer" else "Number"
        text += f" {kind} in [{plain_number(spec.min)}, {plain_number(spec.max)}]."
    if spec.protected:
        text += " Protected attribute: optional, never used by the model, logged for fairness monitoring."
    elif not spec.required:
        text += " Optional: absent or null means not provided."
    return text


# A schema-level key, not a model input: logged with the decision so outcomes can name the applicant.
_APPLICANT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
_APPLICANT_ID_MAX = 128
_APPLICANT_ID = Annotated[str, Field(min_length=1, max_length=_APPLICANT_ID_MAX, pattern=f"^{_APPLICANT_ID_PATTERN}$")]
_APPLICANT_ID_DOC = "Your id for the applicant (optional; not used by the model): outcomes may refer to it."


def request_rules(schema: FeatureSchema) -> list[FieldRule]:
    """Each field's rule as a request applies it: protected fields are optional to send whatever the
    schema says (the model never sees them)."""
    return [
        FieldRule(spec.model_copy(update={"required": False}) if spec.protected else spec) for spec in schema.fields
    ]


def applicant_model(schema: FeatureSchema) -> type[BaseModel]:
    """The pydantic model of one applicant for this schema."""
    example = schema.example_record()
    fields: dict[str, Any] = {}
    required: list[str] = []
    for spec, rule in zip(schema.fields, request_rules(schema), strict=True):
        docs = {"title": spec.label, "description": _description(spec), "examples": [example[spec.name]]}
        # absent is None, judged by the rule like a null: one wording for "is required"
        fields[spec.name] = (_field_type(rule), Field(None, validate_default=True, **docs))
        if rule.required:
            required.append(spec.name)
    fields["applicant_id"] = (_APPLICANT_ID | None, Field(None, description=_APPLICANT_ID_DOC))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Applicant",
        __config__=ConfigDict(
            extra="forbid", strict=True, frozen=True, json_schema_extra=_published(required, example)
        ),
        __doc__=f"One applicant (feature schema version {schema.version}); categoricals take the category codes.",
        **fields,
    )


def _published(required: list[str], example: dict[str, Any]) -> Any:
    """The applicant's JSON Schema as clients read it: required inputs listed, no null default on them."""

    def edit(schema: dict[str, Any]) -> None:
        schema["required"] = list(required)
        for name in required:
            schema["properties"][name].pop("default", None)
        schema["examples"] = [example]

    return edit


def batch_model(applicant: type[BaseModel], max_batch: int, example: dict[str, Any]) -> type[BaseModel]:
    """``{"applicants": [...]}`` with 1 to ``max_batch`` applicants."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        "BatchRequest",
        __config__=ConfigDict(
            extra="forbid", strict=True, frozen=True, json_schema_extra={"examples": [{"applicants": [example]}]}
        ),
        __doc__=f"Up to {max_batch} applicants; results come back in the same order.",
        applicants=(list[applicant], Field(min_length=1, max_length=max_batch)),  # type: ignore[valid-type]
    )


_APPLICANT_ID_TEXT = re.compile(_APPLICANT_ID_PATTERN)


class _RefusedError(Exception):
    """The quick check could not accept the body: the full parse judges it (and words the error)."""


def _quick_applicant(rules: tuple[tuple[str, Any], ...], known: frozenset[str], body: bytes) -> dict[str, Any]:
    """The applicant the full parse would return, for a well-formed body; :class:`_RefusedError` otherwise.

    A valid single applicant is a flat JSON object of known fields, so it can be judged with the C
    JSON parser and each field's rule directly, without the pydantic model (8.7 against 14 us a
    body in-process). Duplicate keys, which a dict cannot show, are caught by counting
    quotes: without a backslash every JSON string is two quote marks, so a body whose quotes are more
    than its keys' and string values' holds a key twice. Anything unusual is :class:`_RefusedError` and
    left to :meth:`RequestParser.single`'s full parse, which answers it exactly as before.
    """
    if b"\\" in body:
        raise _RefusedError
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError, a body nested too deeply
        raise _RefusedError from None
    if type(data) is not dict or not data.keys() <= known:
        raise _RefusedError  # not an object, or an unknown field
    strings = len(data)
    record: dict[str, Any] = {}
    try:
        for name, parse in rules:
            value = data.get(name)
            if type(value) is str:
                strings += 1
            record[name] = parse(value)
    except RuleError:
        raise _RefusedError from None
    applicant_id = data.get("applicant_id")
    if applicant_id is not None:
        if type(applicant_id) is not str or len(applicant_id) > _APPLICANT_ID_MAX:
            raise _RefusedError
        if not _APPLICANT_ID_TEXT.fullmatch(applicant_id):
            raise _RefusedError
        strings += 1
    record["applicant_id"] = applicant_id
    if body.count(b'"') != 2 * strings:
        raise _RefusedError  # a key given twice
    return record


@dataclass(frozen=True)
class RequestParser:
    """Validates bodies against one schema; built once per loaded model version."""

    schema: FeatureSchema
    applicant: type[BaseModel]
    batch: type[BaseModel]
    max_batch: int
    rules: tuple[tuple[str, Any], ...] = ()  # (field, its rule's parse) in schema order: the quick check
    known: frozenset[str] = frozenset()  # the keys an applicant may have

    @classmethod
    def for_schema(cls, schema: FeatureSchema, *, max_batch: int) -> RequestParser:
        applicant = applicant_model(schema)
        rules = tuple((rule.name, rule.parse) for rule in request_rules(schema))
        known = frozenset(name for name, _ in rules) | {"applicant_id"}
        batch = batch_model(applicant, max_batch, schema.example_record())
        return cls(schema, applicant, batch, max_batch, rules, known)

    def single(self, body: bytes) -> dict[str, Any]:
        """One applicant as a plain dict (every schema field; None for optional and protected fields not sent)."""
        try:
            return _quick_applicant(self.rules, self.known, body)
        except _RefusedError:
            return self.single_in_full(body)

    def single_in_full(self, body: bytes) -> dict[str, Any]:
        """:meth:`single` through the pydantic model alone: the reference the quick check is tested against."""
        data = load_json(body)
        try:
            return dict(self.applicant.model_validate(data).__dict__)
        except ValidationError as exc:
            raise InvalidInputError(
                problems_from_pydantic(exc.errors(include_url=False, include_input=False))
            ) from None

    def many(self, body: bytes) -> list[dict[str, Any]]:
        """A batch's applicants, in order; a 422 lists every bad row with its index."""
        data = load_json(body)
        if isinstance(data, dict) and isinstance(data.get("applicants"), list):
            count = len(data["applicants"])
            if count > self.max_batch:  # refuse before validating thousands of rows
                raise InvalidInputError(
                    [
                        problem(
                            ["body", "applicants"],
                            f"a batch holds at most {self.max_batch} applicants, got {count}",
                            "too_long",
                        )
                    ]
                )
        try:
            batch = self.batch.model_validate(data)
        except ValidationError as exc:
            raise InvalidInputError(
                problems_from_pydantic(exc.errors(include_url=False, include_input=False))
            ) from None
        return [dict(item.__dict__) for item in batch.applicants]  # type: ignore[attr-defined]

    def openapi_schemas(self) -> dict[str, Any]:
        """JSON schemas of the two request bodies, for the OpenAPI document."""
        applicant = self.applicant.model_json_schema(ref_template="#/components/schemas/{model}")
        batch = self.batch.model_json_schema(ref_template="#/components/schemas/{model}")
        batch.pop("$defs", None)
        return {"Applicant": applicant, "BatchRequest": batch}
