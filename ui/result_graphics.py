"""The Score page's graphics: the risk gauge and the reasons chart, each with its text alternative.

Pure builders (HTML and Altair specs), kept apart from the page script.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import altair as alt
import pandas as pd

from ui.form_schema import FormSchema
from ui.present import (
    DECISION_COLOURS,
    PERCENT_FORMAT,
    band_colours,
    percent,
    reason_value_text,
    text_colour_on,
)


def position(probability: float) -> float:
    """Where a probability sits on the gauge, in percent of its width.

    A square-root scale spreads the low probabilities, where most bands and
    both cut-offs sit, over most of the gauge.
    """
    return 100 * min(max(probability, 0.0), 1.0) ** 0.5


def gauge_text(probability: float, band: str, info: Mapping[str, Any]) -> str:
    """The gauge in words, for screen readers."""
    bands = [b["name"] for b in info.get("risk_bands") or []]
    policy = info.get("decision") or {}
    parts = [f"Probability of default {percent(probability)}, in risk band {band}"]
    if bands:
        parts[0] += f" (bands {bands[0]}, lowest risk, to {bands[-1]}, highest)"
    if isinstance(policy.get("approve_below"), int | float):
        parts.append(f"approved below {percent(policy['approve_below'])}")
    if isinstance(policy.get("decline_at_or_above"), int | float):
        parts.append(f"declined from {percent(policy['decline_at_or_above'])}")
    return "; ".join(parts) + "."


def gauge_html(probability: float, band: str, info: Mapping[str, Any]) -> str | None:
    """The risk bands as coloured segments, a marker at the applicant and ticks at the policy's cut-offs."""
    bands = info.get("risk_bands") or []
    if not bands:
        return None
    colours = band_colours([b["name"] for b in bands])
    segments, lower = [], 0.0
    for item in bands:
        width = position(item["max_probability"]) - position(lower)
        background = colours[item["name"]]
        segments.append(
            f'<div title="{escape(item["name"])}: {percent(lower)} to {percent(item["max_probability"])}" '
            f'style="width:{width:.2f}%;background:{background};color:{text_colour_on(background)};'
            f'text-align:center;font-weight:600;line-height:1.8rem;overflow:hidden">{escape(item["name"])}</div>'
        )
        lower = item["max_probability"]
    policy = info.get("decision") or {}
    # The approve label ends at its tick and the decline label starts at its own, so they never overlap.
    ticks = "".join(
        f'<div style="position:absolute;left:{position(policy[key]):.2f}%;top:0;height:2.6rem;'
        f'border-left:2px dashed #333"></div>'
        f'<div style="position:absolute;left:{position(policy[key]):.2f}%;top:2.6rem;transform:translateX({shift});'
        f'font-size:0.75rem;color:#333;white-space:nowrap;padding:0 0.3rem">{text} {percent(policy[key])}</div>'
        for key, text, shift in (
            ("approve_below", "approved below", "-100%"),
            ("decline_at_or_above", "declined from", "0"),
        )
        if isinstance(policy.get(key), int | float)
    )
    marker = (
        f'<div style="position:absolute;left:{position(probability):.2f}%;top:-2.3rem;transform:translateX(-50%);'
        f'font-weight:700;white-space:nowrap;text-align:center;line-height:1.1rem">{percent(probability)}<br>&#9660;</div>'
    )
    label = escape(gauge_text(probability, band, info))
    return (
        f'<div role="img" aria-label="{label}" data-testid="risk-gauge" '
        'style="position:relative;margin:2.6rem 0.5rem 2.2rem 0.5rem">'
        f'<div aria-hidden="true">{marker}<div style="display:flex;border-radius:0.3rem;overflow:hidden;'
        f'margin-top:0.4rem">{"".join(segments)}</div>{ticks}</div></div>'
    )


def reasons_chart(reasons: list[Mapping[str, Any]], schema: FormSchema) -> tuple[alt.Chart, str]:
    """Each reason's share of the risk the reasons added, as bars; and the same in words."""
    total = sum(max(float(r.get("contribution") or 0), 0.0) for r in reasons) or 1.0
    rows = []
    for r in reasons:
        spec = schema.by_name.get(str(r.get("field", "")))
        label = spec.plain_label if spec is not None else str(r.get("label"))
        value = reason_value_text(r, spec)
        rows.append(
            {
                "factor": label,
                "value": value if value is not None else "not provided",
                "share": max(float(r.get("contribution") or 0), 0.0) / total,
            }
        )
    frame = pd.DataFrame(rows)
    chart = (
        alt.Chart(frame)
        .mark_bar(color=DECISION_COLOURS["decline"])
        .encode(
            x=alt.X("share:Q", title="Share of the added risk", axis=alt.Axis(format=PERCENT_FORMAT, tickCount=5)),
            # Labels alone on the axis (the values are in the sentences above): the bars keep their width.
            y=alt.Y("factor:N", sort="-x", title=None, axis=alt.Axis(labelLimit=170)),
            tooltip=[
                "factor:N",
                "value:N",
                alt.Tooltip("share:Q", title="share of the added risk", format=PERCENT_FORMAT),
            ],
        )
        .properties(height=36 * len(reasons) + 40)
    )
    words = (
        "Share of the added risk: "
        + "; ".join(f"{r['factor']} ({r['value']}) {percent(r['share'])}" for r in rows)
        + "."
    )
    return chart, words
