"""Pure helpers behind the pages: wording, colours, client-side validation, tables.

No Streamlit and no HTTP here, so the rules can be tested on their own and
every page words things the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
