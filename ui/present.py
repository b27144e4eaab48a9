"""Pure helpers behind the pages: wording, colours, client-side validation, tables.

No Streamlit and no HTTP here, so the rules can be tested on their own and
every page words things the same way.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ui.form_schema import FormField, FormSchema, plain_label

# One word per decision on every page; the keys are the policy's decision names as the API answers them.
DECISION_WORDS = {"approve": "Approved", "review": "Referred", "refer": "Referred", "decline": "Declined"}
DECISION_HELP = {
    "approve": "Approved: the risk is below the approval cut-off.",
    "review": "Referred: between the cut-offs, an underwriter decides.",
    "refer": "Referred: between the cut-offs, an underwriter decides.",
    "decline": "Declined: the risk is at or above the decline cut-off.",
}
# Each colour carries white text at 5:1 or more (WCAG AA asks 4.5:1).
DECISION_COLOURS = {"approve": "#1a7f37", "review": "#9a5b00", "refer": "#9a5b00", "decline": "#c62828"}
DECISION_ORDER = ("approve", "review", "decline")
# Best band first: green through amber to red; more bands than colours reuse the last.
BAND_PALETTE = ("#1a7f37", "#4caf50", "#9ccc65", "#fbc02d", "#f57c00", "#c62828")
DARK_TEXT, LIGHT_TEXT = "#111111", "#ffffff"


# Every percentage on every page has one decimal: "12.3%". Pages call ``percent`` for text and use
# ``PERCENT_FORMAT`` (a d3 format) for chart axes and tooltips; none formats a percentage itself.
PERCENT_FORMAT = ".1%"


def percent(value: float | None, *, missing: str = "n/a") -> str:
    """A share as people read it, with the pages' one precision: 0.1234 -> "12.3%"; None -> ``missing``."""
    return missing if value is None else f"{float(value):.1%}"


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 decision", "2 decisions": a count with its noun in the right number."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def decision_word(decision: Any) -> str:
    """The one human word for a decision name the API answers ("approve" -> "Approved")."""
    text = str(decision or "")
    return DECISION_WORDS.get(text, text.replace("_", " ").capitalize() or "Unknown")


def band_colours(band_names: Sequence[str]) -> dict[str, str]:
    """A colour per risk band, best band green, worst red."""
    n = len(band_names)
    palette = BAND_PALETTE
    if n <= 1:
        return {name: palette[0] for name in band_names}
    return {name: palette[round(i * (len(palette) - 1) / (n - 1))] for i, name in enumerate(band_names)}


# ---------------------------------------------------------------- contrast (WCAG 2.x)


def _channels(colour: str) -> tuple[float, float, float]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), lighter over darker: 1 to 21."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_colour_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    return max((LIGHT_TEXT, DARK_TEXT), key=lambda text: contrast_ratio(text, background))


# ---------------------------------------------------------------- reasons


def reason_value_text(reason: Mapping[str, Any], spec: FormField | None) -> str | None:
    """The applicant's value in their terms (a category's label), None when it was not provided."""
    value = reason.get("value")
    if value is None:
        return None
    if spec is not None and (spec.type == "categorical" or spec.value_labels):
        return spec.label_of(value)
    return str(reason.get("value_label") or value)


def reason_label(reason: Mapping[str, Any], spec: FormField | None) -> str:
    if spec is not None:
        return spec.plain_label
    return plain_label(str(reason.get("label") or reason.get("field") or "?"))


def reason_sentence(reason: Mapping[str, Any], spec: FormField | None = None) -> str:
    """One reason as a plain sentence: 'Loan duration (months) is 48, which raised the assessed risk.'"""
    label = reason_label(reason, spec)
    value = reason_value_text(reason, spec)
    if value is None:
        return f"{label} was not provided, which raised the assessed risk."
    if spec is not None and (spec.type == "categorical" or spec.value_labels):
        return f'{label} is "{value}", which raised the assessed risk.'
    return f"{label} is {value}, which raised the assessed risk."


def reasons_text(reasons: Sequence[Mapping[str, Any]], schema: FormSchema | None) -> str:
    """'Checking account; Loan duration (months)': the reasons' labels, for tables people read."""
    by_name = schema.by_name if schema is not None else {}
    return "; ".join(reason_label(r, by_name.get(str(r.get("field", "")))) for r in reasons)


def reason_codes_text(reasons: Sequence[Mapping[str, Any]]) -> str:
    """'CHK; DUR': the reasons' codes, for the files other systems read (never a table on a page)."""
    return "; ".join(str(r.get("code", "")) for r in reasons)


# ---------------------------------------------------------------- batch: reading and checking

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


# ---------------------------------------------------------------- monitoring groups

_AGE_UNDER = re.compile(r"^under\s+(-?\d+(?:\.\d+)?)$", re.IGNORECASE)
_AGE_OVER = re.compile(r"^(-?\d+(?:\.\d+)?)\s+(?:and|or)\s+(?:over|more|above)$", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^(?:[<>]=?\s*)?(-?\d+(?:\.\d+)?)")


def group_sort_key(group: str, order: Sequence[str] = ()) -> tuple[int, float, str]:
    """Groups in their natural order: the schema's category order, or numeric bands by their lower bound."""
    if group in order:
        return (0, float(order.index(group)), group)
    text = group.strip()
    if match := _AGE_UNDER.match(text):
        return (1, float(match.group(1)) - 0.5, text)
    if match := _AGE_OVER.match(text):
        return (1, float(match.group(1)), text)
    if match := _LEADING_NUMBER.match(text):
        return (1, float(match.group(1)), text)
    return (2, 0.0, text)


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
                    metrics[key.removeprefix("metric.")] = round(float(value), 4)
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


def alternative_html(alternative: Mapping[str, Any]) -> str:
    """One alternative application in words, as HTML: "<strong>Approved</strong> with: Credit amount (DM)
    15,000 to 9,400 (probability of default 15.1%)" (the answer's ``summary``, in the schema's words)."""
    from html import escape

    return (
        f"<strong>{escape(decision_word(alternative.get('decision')))}</strong> with: "
        f"{escape(str(alternative.get('summary', '')))} "
        f"(probability of default {percent(alternative.get('probability_of_default', 0.0))})"
    )


def recourse_html(result: Mapping[str, Any]) -> str | None:
    """What would change a decline or a referral, as an HTML list (or the answer's note when it found
    none); None for an approval, or an answer not asked for it."""
    from html import escape

    if result.get("decision") not in ("decline", "review") or "recourse" not in result:
        return None
    alternatives = list(result.get("recourse") or [])
    if not alternatives:
        note = result.get("recourse_note") or "No alternative was found within the configured limits."
        return f"<p>{escape(str(note))}</p>"
    items = "".join(f"<li>{alternative_html(a)}</li>" for a in alternatives)
    return f'<ul data-testid="recourse">{items}</ul>'


def summary_html(result: Mapping[str, Any], schema: FormSchema | None, *, applicant_id: str | None) -> str:
    """A printable one-page decision summary (applicant, decision, score, band, reasons, what would change
    a decline or a referral when the answer says it, model version, policy, time) as a self-contained
    HTML page with no script: open it and print, or save as PDF."""
    from html import escape

    model = result.get("model") or {}
    reasons = list(result.get("reasons") or [])
    by_name = schema.by_name if schema is not None else {}
    items = "".join(
        f"<li>{escape(reason_sentence(reason, by_name.get(str(reason.get('field', '')))))}</li>" for reason in reasons
    )
    rows = [
        ("Applicant id", applicant_id or "not given"),
        ("Decision", decision_word(result.get("decision"))),
        ("Probability of default", percent(result.get("probability_of_default", 0.0))),
        ("Score", str(result.get("score"))),
        ("Risk band", str(result.get("risk_band"))),
        ("Model", f"{model.get('name')} version {model.get('version')}"),
        ("Decision policy", str(result.get("decision_policy_version"))),
        ("Decided at", str(result.get("scored_at"))),
        ("Request id", str(result.get("request_id"))),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    reasons_part = (
        f"<ol>{items}</ol>" if items else "<p>No factor raised the assessed risk above a typical applicant's.</p>"
    )
    recourse = recourse_html(result)
    recourse_part = f"<h2>What would change the decision</h2>{recourse}" if recourse is not None else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Decision {escape(str(result.get('request_id')))}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}th{text-align:left;padding-right:1em}"
        "td,th{padding:0.2em 0}</style></head><body>"
        f"<h1>Credit decision: {escape(decision_word(result.get('decision')))}</h1><table>{table}</table>"
        f"<h2>Principal reasons</h2>{reasons_part}{recourse_part}</body></html>"
    )
