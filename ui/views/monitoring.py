"""Monitoring: the latest drift and health summary from ``GET /v1/monitoring``.

The monitor job (``pipelines/monitor/``) computes every figure; this page
only draws them: volume and latency over time, the decision mix, the score
distribution against training, PSI per feature with the thresholds drawn,
and approval-rate ratios across protected groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.api_client import ApiError, NotFoundError
from ui.context import current, show_api_error
from ui.form_schema import FormSchema
from ui.present import (
    DECISION_COLOURS,
    DECISION_ORDER,
    PERCENT_FORMAT,
    decision_word,
    group_sort_key,
    percent,
    plural,
)
from ui.refresh import refresh_panel

_STATUS = {
    "ok": ("success", "No alert: the population looks like the training data."),
    "alert": ("error", "Alert: at least one figure crossed its threshold."),
    "no_data": (
        "info",
        "No decision by the served version was logged in this window yet: score applicants (the Score or Batch "
        "page), then refresh the monitoring summary, or choose a window that has decisions.",
    ),
    "insufficient_data": (
        "warning",
        "Too few decisions in this window for drift figures to mean much: the figures are shown, alerts are not "
        "raised until more decisions are logged.",
    ),
}
_LEVEL_COLOURS = {"none": "#1a7f37", "moderate": "#f57c00", "major": "#c62828"}
_LEVEL_WORDS = {"none": "stable", "moderate": "moderate shift", "major": "major shift"}
_FAVOURABLE = {
    "not_declined": ("not declined", "approved or referred to an underwriter"),
    "approved": ("approved", "approved outright"),
}


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def alert_text(alert: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """An alert in words, with the field's label rather than its name."""
    subject = str(alert.get("subject", ""))
    name = "Probability of default" if subject == "probability" else labels.get(subject, subject)
    value, threshold = alert.get("value"), alert.get("threshold")
    if not (isinstance(value, int | float) and isinstance(threshold, int | float)):
        return str(alert.get("message", ""))
    if alert.get("kind") == "psi":
        level = _LEVEL_WORDS.get(str(alert.get("level")), str(alert.get("level")))
        return f"{name}: population stability index {value:.3f}, above {threshold:.2f} ({level})."
    if alert.get("kind") == "disparate_impact":
        return (
            f"{name}: the lowest group's favourable-outcome rate is {value:.2f} of the highest's "
            f"(below {threshold:.2f})."
        )
    return str(alert.get("message", ""))


def _header(summary: Mapping[str, Any], labels: Mapping[str, str]) -> None:
    model, window = summary.get("model") or {}, summary.get("window") or {}
    st.caption(
        f"Model **{model.get('name')}** version **{model.get('version')}**, window {window.get('start')} to "
        f"{window.get('end')} (UTC); summary generated {summary.get('generated_at')}."
    )
    kind, text = _STATUS.get(str(summary.get("status")), ("info", str(summary.get("status", "")).replace("_", " ")))
    getattr(st, kind)(f"**{text}**")
    for alert in summary.get("alerts") or []:
        st.markdown(f"- **{str(alert.get('level', '')).capitalize()}**: {alert_text(alert, labels)}")
    other = summary.get("other_versions") or {}
    if other:
        counts = ", ".join(f"version {v}: {plural(n, 'row')}" for v, n in sorted(other.items()))
        st.caption(f"Rows scored by other versions in this window are not included ({counts}).")


def _headline(summary: Mapping[str, Any]) -> None:
    latency, rates = summary.get("latency_ms") or {}, summary.get("decision_rates") or {}
    columns = st.columns(7)
    columns[0].metric("Volume", f"{summary.get('volume', 0):,}")
    columns[1].metric("Latency p50", _ms(latency.get("p50")))
    columns[2].metric("Latency p95", _ms(latency.get("p95")))
    columns[3].metric("Latency p99", _ms(latency.get("p99")))
    for column, decision in zip(columns[4:], DECISION_ORDER, strict=True):
        column.metric(decision_word(decision), percent(rates.get(decision)), help="Share of all decisions.")


def _over_time(summary: Mapping[str, Any]) -> None:
    series = summary.get("time_series") or {}
    points = pd.DataFrame(series.get("points") or [])
    if points.empty:
        return
    unit = series.get("bucket", "bucket")
    # Ordinal periods rather than a time axis: bars stay wide however few buckets there are.
    starts = pd.to_datetime(points["start"], utc=True)
    points["start"] = starts.dt.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")
    st.subheader("Volume and latency over time")
    left, right = st.columns(2)
    volume = (
        alt.Chart(points)
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X("start:O", title=f"{unit.capitalize()} (UTC)", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("volume:Q", title="Scored applicants"),
            tooltip=["start:O", "volume:Q"],
        )
        .properties(height=260, title=f"Volume per {unit}")
    )
    left.altair_chart(
        volume,
        width="stretch",
        alt=f"Bar chart of scored applicants per {unit}: {plural(len(points), unit)}, "
        f"{int(points['volume'].sum()):,} in all, at most {int(points['volume'].max()):,} in one {unit}.",
    )
    latency = points.melt(
        id_vars=["start"], value_vars=["latency_p50", "latency_p95", "latency_p99"], var_name="percentile"
    )
    latency["percentile"] = latency["percentile"].str.removeprefix("latency_")
    lines = (
        alt.Chart(latency)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:O", title=f"{unit.capitalize()} (UTC)", axis=alt.Axis(labelAngle=-30)),
            # no axis title (the chart's title names the unit) and the legend at the right: a legend below and
            # a rotated axis title left the plot no height and pushed the chart's title off the chart
            y=alt.Y("value:Q", title=None),
            color=alt.Color("percentile:N", title=None, legend=alt.Legend(orient="right")),
            tooltip=["start:O", "percentile:N", alt.Tooltip("value:Q", format=".2f")],
        )
        # the title from the left, the legend three short words: neither is cut at 390 px
        .properties(height=260, title=alt.TitleParams("Server-side latency percentiles (ms)", anchor="start"))
    )
    p99 = points["latency_p99"].dropna()
    right.altair_chart(
        lines,
        width="stretch",
        alt=f"Line chart of server-side latency percentiles (p50, p95, p99) per {unit}"
        + (f"; the highest p99 is {p99.max():.1f} ms." if not p99.empty else "."),
    )
    st.subheader("Decision mix")
    decisions = [d for d in DECISION_ORDER if d in points.columns]
    mix = points.melt(id_vars=["start"], value_vars=decisions, var_name="decision", value_name="count")
    mix["decision"] = mix["decision"].map(decision_word)
    words = [decision_word(d) for d in decisions]
    stacked = (
        alt.Chart(mix)
        .mark_bar()
        .encode(
            x=alt.X("start:O", title=f"{unit.capitalize()} (UTC)", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("count:Q", stack="normalize", title="Share of decisions", axis=alt.Axis(format=PERCENT_FORMAT)),
            color=alt.Color(
                "decision:N",
                title="Decision",
                sort=words,
                scale=alt.Scale(domain=words, range=[DECISION_COLOURS[d] for d in decisions]),
            ),
            tooltip=["start:O", "decision:N", "count:Q"],
        )
        .properties(height=240)
    )
    totals = {decision_word(d): int(points[d].sum()) for d in decisions}
    all_decisions = sum(totals.values()) or 1
    st.altair_chart(
        stacked,
        width="stretch",
        alt=f"Share of decisions per {unit}: over the window "
        + ", ".join(f"{word} {percent(count / all_decisions)}" for word, count in totals.items())
        + ".",
    )


def bin_labels(edges: Sequence[float], *, as_percent: bool) -> list[str]:
    """Names of the bins (-inf, e0), [e0, e1), ..., [ek, inf) that the profile's inner edges define."""
    text = percent if as_percent else (lambda v: f"{v:g}")
    if not edges:
        return ["all"]
    labels = [f"< {text(edges[0])}"]
    labels += [f"{text(a)} to {text(b)}" for a, b in itertools.pairwise(edges)]
    labels.append(f">= {text(edges[-1])}")
    return labels


def _distribution(summary: Mapping[str, Any]) -> None:
    entry = (summary.get("psi") or {}).get("probability") or {}
    expected, actual = entry.get("expected") or [], entry.get("actual") or []
    if not expected or len(expected) != len(actual):
        return
    labels = bin_labels(entry.get("edges") or [], as_percent=True)
    if len(labels) != len(expected):
        labels = [f"bin {i + 1}" for i in range(len(expected))]
    frame = pd.DataFrame(
        [
            {"bin": label, "population": population, "share": share}
            for population, shares in (("training", expected), ("logged", actual))
            for label, share in zip(labels, shares, strict=True)
        ]
    )
    psi = entry.get("psi")
    level = _LEVEL_WORDS.get(str(entry.get("level")), str(entry.get("level")))
    st.subheader("Probability of default: logged applicants against training")
    st.caption(
        "Share of applicants in each band of the probability of default; the bands are the training data's "
        "deciles, so each holds a tenth of the training applicants. "
        + (f"PSI {psi:.3f} ({level})." if psi is not None else "")
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bin:N", sort=labels, title="Probability of default", axis=alt.Axis(labelAngle=-30)),
            xOffset="population:N",
            y=alt.Y("share:Q", title="Share of applicants", axis=alt.Axis(format=PERCENT_FORMAT)),
            color=alt.Color(
                "population:N", scale=alt.Scale(domain=["training", "logged"], range=["#9e9e9e", "#4c78a8"])
            ),
            tooltip=["bin:N", "population:N", alt.Tooltip("share:Q", format=PERCENT_FORMAT)],
        )
        .properties(height=280)
    )
    largest = max(zip(labels, actual, strict=True), key=lambda pair: pair[1])
    st.altair_chart(
        chart,
        width="stretch",
        alt="Grouped bar chart of the share of applicants per probability-of-default band, training against "
        f"logged; the largest logged share is {percent(largest[1])}, in the band {largest[0]}.",
    )


def _psi(summary: Mapping[str, Any], labels: Mapping[str, str]) -> None:
    drift = summary.get("psi") or {}
    entries = {"probability": drift.get("probability") or {}, **(drift.get("features") or {})}
    scored = [
        {
            "field": "Probability of default" if name == "probability" else labels.get(name, name),
            "psi": entry["psi"],
            "level": _LEVEL_WORDS.get(entry.get("level", "none"), entry.get("level", "none")),
            "protected": bool(entry.get("protected")),
        }
        for name, entry in entries.items()
        if entry.get("status") == "scored" and entry.get("psi") is not None
    ]
    st.subheader("Population stability index per feature")
    if not scored:
        st.info("No PSI figures in this summary (no logged rows of the served version).")
        return
    thresholds = summary.get("thresholds") or {}
    frame = pd.DataFrame(scored)
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("psi:Q", title="Population stability index (PSI)"),
            y=alt.Y("field:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color(
                "level:N",
                title="Shift",
                scale=alt.Scale(
                    domain=[_LEVEL_WORDS[level] for level in _LEVEL_COLOURS], range=list(_LEVEL_COLOURS.values())
                ),
            ),
            tooltip=["field:N", alt.Tooltip("psi:Q", format=".4f"), "level:N", "protected:N"],
        )
    )
    layers: list[alt.Chart] = [bars]
    rules = [
        {"threshold": value, "label": f"{name.removeprefix('psi_')} {value:g}"}
        for name, value in thresholds.items()
        if name in ("psi_moderate", "psi_major") and isinstance(value, int | float)
    ]
    if rules:
        rule_chart = alt.Chart(pd.DataFrame(rules))
        layers.append(rule_chart.mark_rule(strokeDash=[5, 4], color="#333").encode(x="threshold:Q"))
        layers.append(
            rule_chart.mark_text(align="left", dx=4, dy=-4, baseline="bottom", color="#333").encode(
                x="threshold:Q", y=alt.value(0), text="label:N"
            )
        )
    st.caption("Below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 major shift (thresholds from config).")
    worst = max(scored, key=lambda row: row["psi"])
    st.altair_chart(
        alt.layer(*layers).properties(height=alt.Step(28)),
        width="stretch",
        alt=f"Bar chart of the PSI of {len(scored)} figures; the largest is {worst['field']} at "
        f"{worst['psi']:.3f} ({worst['level']}).",
    )
    other = {name: entry.get("status") for name, entry in entries.items() if entry.get("status") not in ("scored",)}
    if other:
        st.caption(
            "Not compared: "
            + ", ".join(f"{labels.get(n, n)} ({str(status).replace('_', ' ')})" for n, status in other.items())
        )


def _fairness(summary: Mapping[str, Any], schema: FormSchema | None, favourable_outcome: str) -> None:
    fairness = summary.get("fairness") or {}
    outcome = str(summary.get("favourable_outcome") or favourable_outcome)
    word, meaning = _FAVOURABLE.get(outcome, (outcome.replace("_", " "), outcome.replace("_", " ")))
    st.subheader(f"Share {word} across protected groups")
    if not fairness:
        st.caption("No protected attributes were sent with the logged requests in this window.")
        return
    st.caption(
        f"The favourable outcome compared here is **{word}** ({meaning}), as configured "
        "(`favourable_outcome` in training.yaml); the headline above counts straight approvals."
    )
    limit = (summary.get("thresholds") or {}).get("min_disparate_impact")
    by_name = schema.by_name if schema is not None else {}
    rows = []
    for attribute, entry in fairness.items():
        spec = by_name.get(attribute)
        order = [c.code for c in spec.choices] if spec is not None else []
        groups = sorted((entry.get("groups") or {}).items(), key=lambda item: group_sort_key(str(item[0]), order))
        for group, stats in groups:
            rows.append(
                {
                    "attribute": spec.plain_label if spec is not None else attribute,
                    "group": spec.label_of(group) if spec is not None and spec.choices else str(group),
                    "applicants": stats.get("n"),
                    f"share {word}": percent(stats.get("approval_rate")),
                    "lowest / highest": entry.get("disparate_impact"),
                }
            )
    if limit is not None:
        st.caption(f"Warning sign: a lowest-to-highest ratio below {limit:g} (the four-fifths rule).")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "group": st.column_config.TextColumn(width="medium"),
            "lowest / highest": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def _served_schema() -> FormSchema | None:
    """The served schema, for labels; None when the service has none (codes are shown then)."""
    client = current().client
    try:
        return client.feature_schema(client.model_info())
    except ApiError:
        return None


def render() -> None:
    st.title("Monitoring")
    client = current().client
    refresh_panel("monitor", what="the monitoring summary", key="monitoring")
    try:
        summary = client.monitoring()
    except NotFoundError:
        st.info(
            "**No monitoring summary exists yet.** It is made from the logged decisions: an admin can make one "
            "with **Refresh now** above (the same job as `make monitor`), once some applicants were scored.",
            icon=":material/query_stats:",
        )
        return
    except ApiError as exc:
        show_api_error(exc, what="read the monitoring summary")
        return
    schema = _served_schema()
    labels = schema.labels() if schema is not None else {}
    _header(summary, labels)
    _headline(summary)
    _over_time(summary)
    _distribution(summary)
    _psi(summary, labels)
    _fairness(summary, schema, current().favourable_outcome)


render()
