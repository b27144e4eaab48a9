"""Monitoring: the latest drift and health summary from ``GET /v1/monitoring``.

The monitor job (``pipelines/monitor.py``) computes every figure; this page
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
from ui.present import DECISION_COLOURS

_STATUS = {
    "ok": ("success", "No alert: the population looks like the training data."),
    "alert": ("error", "Alert: at least one figure crossed its threshold."),
    "no_data": ("info", "No prediction of the served version was logged in this window."),
    "insufficient_data": ("warning", "Too few logged predictions in this window for drift figures to mean much."),
}
_LEVEL_COLOURS = {"none": "#1a7f37", "moderate": "#f57c00", "major": "#c62828"}


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _header(summary: Mapping[str, Any]) -> None:
    model, window = summary.get("model") or {}, summary.get("window") or {}
    st.caption(
        f"Model **{model.get('name')}** version **{model.get('version')}**, window {window.get('start')} to "
        f"{window.get('end')} (UTC); summary generated {summary.get('generated_at')}."
    )
    kind, text = _STATUS.get(str(summary.get("status")), ("info", f"Status: {summary.get('status')}"))
    getattr(st, kind)(f"**Status: {summary.get('status')}** (alert level {summary.get('alert_level')}). {text}")
    for alert in summary.get("alerts") or []:
        st.markdown(f"- :red[**{alert.get('level')}**] {alert.get('message')}")
    other = summary.get("other_versions") or {}
    if other:
        st.caption(f"Rows from other versions in the window (not included): {other}")


def _headline(summary: Mapping[str, Any]) -> None:
    latency, rates = summary.get("latency_ms") or {}, summary.get("decision_rates") or {}
    columns = st.columns(7)
    columns[0].metric("Volume", f"{summary.get('volume', 0):,}")
    columns[1].metric("Latency p50", _ms(latency.get("p50")))
    columns[2].metric("Latency p95", _ms(latency.get("p95")))
    columns[3].metric("Latency p99", _ms(latency.get("p99")))
    columns[4].metric("Approved", _percent(rates.get("approve")))
    columns[5].metric("Referred", _percent(rates.get("review")))
    columns[6].metric("Declined", _percent(rates.get("decline")))


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
    left.altair_chart(volume, width="stretch")
    latency = points.melt(
        id_vars=["start"], value_vars=["latency_p50", "latency_p95", "latency_p99"], var_name="percentile"
    )
    latency["percentile"] = latency["percentile"].str.removeprefix("latency_")
    lines = (
        alt.Chart(latency)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:O", title=f"{unit.capitalize()} (UTC)", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("value:Q", title="Server-side latency (ms)"),
            color=alt.Color("percentile:N", title=None),
            tooltip=["start:O", "percentile:N", alt.Tooltip("value:Q", format=".2f")],
        )
        .properties(height=260, title="Latency percentiles")
    )
    right.altair_chart(lines, width="stretch")
    st.subheader("Decision mix")
    mix = points.melt(id_vars=["start"], value_vars=list(DECISION_COLOURS), var_name="decision", value_name="count")
    stacked = (
        alt.Chart(mix)
        .mark_bar()
        .encode(
            x=alt.X("start:O", title=f"{unit.capitalize()} (UTC)", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("count:Q", stack="normalize", title="Share of decisions", axis=alt.Axis(format="%")),
            color=alt.Color(
                "decision:N",
                scale=alt.Scale(domain=list(DECISION_COLOURS), range=list(DECISION_COLOURS.values())),
            ),
            tooltip=["start:O", "decision:N", "count:Q"],
        )
        .properties(height=240)
    )
    st.altair_chart(stacked, width="stretch")


def bin_labels(edges: Sequence[float], *, percent: bool) -> list[str]:
    """Names of the bins (-inf, e0), [e0, e1), ..., [ek, inf) that the profile's inner edges define."""
    text = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:g}")
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
    labels = bin_labels(entry.get("edges") or [], percent=True)
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
    st.subheader("Score distribution against training")
    st.caption(
        "Probability of default in the training deciles (bins fixed on the training data). "
        + (f"PSI {psi:.3f} ({entry.get('level')} shift)." if psi is not None else "")
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bin:N", sort=labels, title="Probability of default", axis=alt.Axis(labelAngle=-30)),
            xOffset="population:N",
            y=alt.Y("share:Q", title="Share of applicants", axis=alt.Axis(format="%")),
            color=alt.Color(
                "population:N", scale=alt.Scale(domain=["training", "logged"], range=["#9e9e9e", "#4c78a8"])
            ),
            tooltip=["bin:N", "population:N", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=280)
    )
    st.altair_chart(chart, width="stretch")


def _psi(summary: Mapping[str, Any], labels: Mapping[str, str]) -> None:
    drift = summary.get("psi") or {}
    entries = {"probability": drift.get("probability") or {}, **(drift.get("features") or {})}
    scored = [
        {
            "field": "Probability of default" if name == "probability" else labels.get(name, name),
            "psi": entry["psi"],
            "level": entry.get("level", "none"),
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
            x=alt.X("psi:Q", title="PSI"),
            y=alt.Y("field:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color(
                "level:N",
                title="Shift",
                scale=alt.Scale(domain=list(_LEVEL_COLOURS), range=list(_LEVEL_COLOURS.values())),
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
    st.altair_chart(alt.layer(*layers).properties(height=alt.Step(28)), width="stretch")
    other = {name: entry.get("status") for name, entry in entries.items() if entry.get("status") not in ("scored",)}
    if other:
        st.caption("Not compared: " + ", ".join(f"{labels.get(n, n)} ({status})" for n, status in other.items()))


def _fairness(summary: Mapping[str, Any], labels: Mapping[str, str]) -> None:
    fairness = summary.get("fairness") or {}
    st.subheader("Approval rates across protected groups")
    if not fairness:
        st.caption("No protected attributes were sent with the logged requests in this window.")
        return
    limit = (summary.get("thresholds") or {}).get("min_disparate_impact")
    rows = [
        {
            "attribute": labels.get(attribute, attribute),
            "group": group,
            "applicants": stats.get("n"),
            "approval rate": stats.get("approval_rate"),
            "disparate impact (attribute)": entry.get("disparate_impact"),
        }
        for attribute, entry in fairness.items()
        for group, stats in (entry.get("groups") or {}).items()
    ]
    if limit is not None:
        st.caption(f"Warning sign: a ratio below {limit:g} (the four-fifths rule).")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            "approval rate": st.column_config.NumberColumn(format="percent"),
            "disparate impact (attribute)": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def _field_labels() -> dict[str, str]:
    """Human labels of the fields, from the served schema when the service has one."""
    client = current().client
    try:
        schema = client.feature_schema(client.model_info())
    except ApiError:
        return {}
    return {spec.name: spec.label for spec in schema.fields}


def render() -> None:
    st.title("Monitoring")
    client = current().client
    try:
        summary = client.monitoring()
    except NotFoundError:
        st.info(
            "**No monitoring summary exists yet.** The monitor job writes one from the prediction log: "
            "run `mlflow run . -e monitor` (or `python -m pipelines.monitor`) after some applicants were scored.",
            icon=":material/query_stats:",
        )
        return
    except ApiError as exc:
        show_api_error(exc, what="read the monitoring summary")
        return
    labels = _field_labels()
    _header(summary)
    _headline(summary)
    _over_time(summary)
    _distribution(summary)
    _psi(summary, labels)
    _fairness(summary, labels)


render()
