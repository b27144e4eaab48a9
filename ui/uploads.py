"""A file of applicants as the Batch page reads it: its separator, its id column, each row checked
against the served model's rules before anything is sent, and the results and refusals as tables.

No Streamlit and no HTTP here (as :mod:`ui.present`), so the checks are tested on their own.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ui.form_schema import FormSchema
from ui.present import decision_word, reason_codes_text, reasons_text

DEFAULT_ID_COLUMN = "applicant_id"  # the batch job's --id-column default (pipelines/batch/options.py)
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


def detect_separator(data: bytes) -> str:
    """The column separator of a CSV, from its first lines (comma when nothing else fits)."""
    head = data[:20_000].decode("utf-8-sig", errors="replace")
    first_line = head.splitlines()[0] if head else ""
    try:
        return csv.Sniffer().sniff(head, delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        counts = {sep: first_line.count(sep) for sep in _SEPARATORS}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] else ","


def separator_name(separator: str) -> str:
    return _SEPARATORS.get(separator, repr(separator))


def guess_id_column(columns: Sequence[str], schema: FormSchema) -> str | None:
    """The id column to carry through: the batch job's default, else the only other column named like an id."""
    extra = [c for c in columns if c not in schema.by_name]
    if DEFAULT_ID_COLUMN in extra:
        return DEFAULT_ID_COLUMN
    ids = [c for c in extra if re.search(r"(^|_|\b)id$", c, flags=re.IGNORECASE)]
    return ids[0] if len(ids) == 1 else None


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
    ids: dict[int, str] = field(default_factory=dict)
    id_column: str | None = None

    @property
    def bad_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})


# the API's rule for an applicant id, in words (serving/requests.py)
APPLICANT_ID_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
APPLICANT_ID_RULE = (
    "an applicant id is letters, digits and . _ : - only, starting with a letter or digit, at most 128 characters"
)


def check_upload(frame: pd.DataFrame, schema: FormSchema, *, id_column: str | None = None) -> CheckedUpload:
    """Check a CSV read as strings against the served schema, row by row, before anything is scored.

    Required fields need a column and a value in every row; optional fields
    may be left out or blank (sent as null). Categories are taken by code or
    label. ``id_column`` is carried through to the results and sent as each
    applicant's ``applicant_id`` (so the decision is logged under it and can be
    found on the Decisions page); other columns the schema does not know are
    ignored and reported.
    """
    columns = [str(c).strip() for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    id_column = id_column if id_column in columns else None
    missing = [spec.name for spec in schema.fields if spec.required and spec.name not in columns]
    ignored = [c for c in columns if c not in schema.by_name and c != id_column]
    if missing:
        hint = ""
        if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
            hint = " (the header reads as one column: is the file separated by something other than commas?)"
        columns_word = "column" if len(missing) == 1 else "columns"
        return CheckedUpload([], [], [], [f"missing required {columns_word}: {', '.join(missing)}{hint}"], ignored)
    present = [spec for spec in schema.fields if spec.name in columns]
    absent_optional = [spec.name for spec in schema.fields if spec.name not in columns]
    records: list[dict[str, Any]] = []
    record_rows: list[int] = []
    problems: list[RowProblem] = []
    ids: dict[int, str] = {}
    names = [spec.name for spec in present] + ([id_column] if id_column else [])
    for position, row in enumerate(frame[names].itertuples(index=False), start=1):
        cells = list(row)
        if id_column:
            ids[position] = str(cells.pop()).strip()
        record: dict[str, Any] = dict.fromkeys(absent_optional)
        row_ok = True
        for spec, raw in zip(present, cells, strict=True):
            value, rule = spec.parse_text(raw)
            if rule is not None:
                problems.append(RowProblem(position, spec.name, str(raw).strip(), rule))
                row_ok = False
            else:
                record[spec.name] = value
        applicant_id = ids.get(position)
        if applicant_id and not APPLICANT_ID_TEXT.fullmatch(applicant_id):
            problems.append(RowProblem(position, id_column or "applicant_id", applicant_id, APPLICANT_ID_RULE))
            row_ok = False
        elif applicant_id:
            record["applicant_id"] = applicant_id
        if row_ok:
            records.append(record)
            record_rows.append(position)
    return CheckedUpload(records, record_rows, problems, [], ignored, ids, id_column)


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


def _id_columns(checked: CheckedUpload, row: int) -> dict[str, Any]:
    return {checked.id_column: checked.ids.get(row)} if checked.id_column else {}


def results_frame(
    checked: CheckedUpload,
    results: Sequence[Mapping[str, Any]],
    schema: FormSchema | None = None,
) -> pd.DataFrame:
    """One line per scored applicant: row and id, the decision columns, the inputs sent, then the ids and the
    reasons' codes (for the downloaded file; the page's table leaves the codes out)."""
    lines = []
    for row, record, result in zip(checked.record_rows, checked.records, results, strict=True):
        model = result.get("model") or {}
        probability = result.get("probability_of_default")
        lines.append(
            {
                "row": row,
                **_id_columns(checked, row),
                "decision": decision_word(result.get("decision")),
                "probability_of_default": round(float(probability), 4) if probability is not None else None,
                "score": result.get("score"),
                "risk_band": result.get("risk_band"),
                "reasons": reasons_text(result.get("reasons") or [], schema),
                **record,
                "model_version": model.get("version"),
                "request_id": result.get("request_id"),
                "reason_codes": reason_codes_text(result.get("reasons") or []),
            }
        )
    return pd.DataFrame(lines)


def rejects_frame(
    frame: pd.DataFrame, checked: CheckedUpload, refused: Mapping[int, str] | None = None
) -> pd.DataFrame:
    """The rows that were not scored, as uploaded, each with what is wrong with it.

    ``refused`` adds rows the service itself refused (file row -> reason).
    """
    reasons: dict[int, list[str]] = {}
    for problem in checked.problems:
        shown = f" ({problem.value})" if problem.value else ""
        reasons.setdefault(problem.row, []).append(f"{problem.field}{shown}: {problem.rule}")
    for row, text in (refused or {}).items():
        reasons.setdefault(row, []).append(text)
    if not reasons:
        return pd.DataFrame(columns=["row", "problems"])
    rows = sorted(reasons)
    original = frame.set_axis([str(c).strip() for c in frame.columns], axis=1).iloc[[r - 1 for r in rows]]
    out = original.reset_index(drop=True)
    out.insert(0, "problems", ["; ".join(reasons[r]) for r in rows])
    out.insert(0, "row", rows)
    if checked.id_column and checked.id_column in out.columns:
        out.insert(1, checked.id_column, out.pop(checked.id_column))
    return out


def template_frame(schema: FormSchema) -> pd.DataFrame:
    """A one-row CSV template: the id column and every field, with a valid example value."""
    return pd.DataFrame([{DEFAULT_ID_COLUMN: "A-0001", **schema.example_record()}])
