"""Pure helpers behind the pages: wording, client-side validation, tables.

No Streamlit and no HTTP here, so the rules can be tested on their own and
every page words things the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from credit_risk.schema import FeatureSchema, FieldSpec

DECISION_COLOURS = {"approve": "#1a7f37", "review": "#b26b00", "decline": "#c62828"}
DECISION_WORDS = {"approve": "Approve", "review": "Refer to an underwriter", "decline": "Decline"}
# Best band first: green through amber to red; more bands than colours reuse the last.
BAND_PALETTE = ("#1a7f37", "#4caf50", "#9ccc65", "#fbc02d", "#f57c00", "#c62828")


def band_colours(band_names: Sequence[str]) -> dict[str, str]:
    """A colour per risk band, best band green, worst red."""
    n = len(band_names)
    palette = BAND_PALETTE
    if n <= 1:
        return {name: palette[0] for name in band_names}
    return {name: palette[round(i * (len(palette) - 1) / (n - 1))] for i, name in enumerate(band_names)}


def reason_sentence(reason: Mapping[str, Any], spec: FieldSpec | None = None) -> str:
    """One reason as a sentence a loan officer could put in an adverse-action notice.

    "Loan duration (months) of 48 increased the assessed risk." for numbers;
    "Checking account (Overdrawn (below 0 DM)) ..." reads badly, so categories
    are quoted: 'Checking account "Overdrawn (below 0 DM)" increased ...'.
    """
    label = reason.get("label") or reason.get("field", "?")
    value_label = reason.get("value_label")
    value = reason.get("value")
    categorical = spec.type == "categorical" if spec is not None else isinstance(value, str)
    if categorical:
        return f'{label} "{value_label or value}" increased the assessed risk.'
    return f"{label} of {value_label or value} increased the assessed risk."


# ---------------------------------------------------------------- batch validation


@dataclass(frozen=True)
class RowProblem:
    """A value in an uploaded file that breaks the schema (``row`` counts data rows from 1)."""

    row: int
    field: str
    value: str
    rule: str


@dataclass(frozen=True)
class CheckedUpload:
    """An uploaded file after the schema check: API-ready records for good rows, problems for the rest."""

    records: list[dict[str, Any]]
    record_rows: list[int]
    problems: list[RowProblem]
    file_problems: list[str]
    ignored_columns: list[str]

    @property
    def bad_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""


def check_value(spec: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    """Convert one cell to its API value, or say which rule it breaks."""
    text = str(raw).strip()
    if spec.type == "categorical":
        if text in spec.codes:
            return text, None
        return None, f"must be one of the codes {list(spec.codes)}"
    try:
        number = float(text)
    except ValueError:
        return None, "must be an integer"
    if not number.is_integer():
        return None, "must be a whole number"
    value = int(number)
    if not spec.min <= value <= spec.max:  # type: ignore[operator]
        return None, f"must be in [{spec.min}, {spec.max}]"
    return value, None


def check_upload(frame: pd.DataFrame, schema: FeatureSchema) -> CheckedUpload:
    """Check a CSV read as strings against the served schema, row by row, before anything is scored.

    Model inputs are required; protected fields are optional (blank = not sent).
    Columns the schema does not know are ignored and reported.
    """
    columns = [str(c).strip() for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    missing = [spec.name for spec in schema.inputs if spec.name not in columns]
    ignored = [c for c in columns if c not in schema.by_name]
    if missing:
        return CheckedUpload([], [], [], [f"missing required column(s): {', '.join(missing)}"], ignored)
    present = [spec for spec in schema.fields if spec.name in columns]
    records: list[dict[str, Any]] = []
    record_rows: list[int] = []
    problems: list[RowProblem] = []
    for position, row in enumerate(frame[[spec.name for spec in present]].itertuples(index=False), start=1):
        record: dict[str, Any] = {}
        row_ok = True
        for spec, raw in zip(present, row, strict=True):
            if _blank(raw):
                if not spec.protected:
                    problems.append(RowProblem(position, spec.name, "", "is required"))
                    row_ok = False
                continue
            value, rule = check_value(spec, raw)
            if rule is not None:
                problems.append(RowProblem(position, spec.name, str(raw), rule))
                row_ok = False
            else:
                record[spec.name] = value
        if row_ok:
            records.append(record)
            record_rows.append(position)
    return CheckedUpload(records, record_rows, problems, [], ignored)


def chunks(
    records: Sequence[Mapping[str, Any]], *, max_items: int, max_bytes: int
) -> Iterable[tuple[int, Sequence[Mapping[str, Any]]]]:
    """(offset, slice) pieces of at most ``max_items`` records whose JSON body stays under ``max_bytes``.

    The service refuses a body over its size limit (413) whatever the count,
    so both limits hold; a single record always makes a piece of its own.
    """
    envelope = len('{"applicants": []}')
    start, size = 0, envelope
    for index, record in enumerate(records):
        cost = len(json.dumps(record)) + 2  # ", " between records
        if index > start and (index - start >= max_items or size + cost > max_bytes):
            yield start, records[start:index]
            start, size = index, envelope
        size += cost
    if start < len(records):
        yield start, records[start:]


def results_frame(
    rows: Sequence[int], records: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """One line per scored applicant: the inputs sent, then what the service answered."""
    lines = []
    for row, record, result in zip(rows, records, results, strict=True):
        model = result.get("model") or {}
        lines.append(
            {
                "row": row,
                **record,
                "probability_of_default": result.get("probability_of_default"),
                "score": result.get("score"),
                "risk_band": result.get("risk_band"),
                "decision": result.get("decision"),
                "reason_codes": " ".join(r.get("code", "") for r in result.get("reasons", [])),
                "model_version": model.get("version"),
                "request_id": result.get("request_id"),
            }
        )
    return pd.DataFrame(lines)


def template_frame(schema: FeatureSchema) -> pd.DataFrame:
    """A one-row CSV template: every field, with a valid example value."""
    return pd.DataFrame([schema.example_record()])


# ---------------------------------------------------------------- registry


def version_rows(versions: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The registry's versions as a table: aliases, kind and the metrics logged as ``metric.*`` tags."""
    lines = []
    for version in versions:
        tags = version.get("tags") or {}
        metrics = {}
        for key, value in tags.items():
            if key.startswith("metric."):
                try:
                    metrics[key.removeprefix("metric.")] = float(value)
                except (TypeError, ValueError):
                    metrics[key.removeprefix("metric.")] = value
        lines.append(
            {
                "version": str(version.get("version")),
                "aliases": ", ".join(version.get("aliases") or []),
                "created_at": version.get("created_at"),
                "model_kind": tags.get("model_kind", ""),
                **dict(sorted(metrics.items())),
                "run_id": version.get("run_id"),
            }
        )
    return pd.DataFrame(lines)
