"""Performance: realized figures from ``GET /v1/performance``, per model version.

The performance job (``mlflow run . -e performance``) computes every figure;
this page draws them, each beside the version's holdout figure at training:
coverage by decision (first, since outcomes exist mostly for approved
applicants), ROC-AUC, Gini, KS, Brier, calibration per band and per decile,
and the bad rate per band across decision-month vintages.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from credit_risk.performance import PerformanceSummary, VersionPerformance
from ui.api_client import ApiClient, ApiError, NotFoundError, ServiceError
from ui.context import current, may, show_api_error
from ui.outcomes import outcomes_panel
from ui.present import PERCENT_FORMAT, band_colours, decision_word, percent
from ui.refresh import refresh_panel

_STATUS = {
    "ok": ("success", "**No alert.** Realized figures are within the configured margins."),
    "alert": ("error", "**Alert.** At least one realized figure crossed its threshold: see below."),
    "no_data": ("info", "**No figures yet.**"),
    "insufficient_data": ("warning", "**Too few outcomes for alerts.** The figures are shown, but they are noisy."),
}


def fetch_summary(client: ApiClient) -> PerformanceSummary:
    """The summary, checked against the one typed model the job writes it with."""
    # the shared client's plumbing (error mapping, timeouts); the UI's own endpoint methods live in api_client
    body = client._request("GET", "/v1/performance")
    try:
        return PerformanceSummary.model_validate(body)
    except ValidationError as exc:
        raise ServiceError(f"/v1/performance sent a summary this UI cannot read: {exc}") from exc


def _fmt(value: float | None) -> str:
    """A figure that is not a share (AUC, Gini, KS, Brier, a slope): three decimals."""
    return "n/a" if value is None else f"{value:.3f}"


def _figures_table(figures: VersionPerformance) -> pd.DataFrame:
    h = figures.holdout
    rows = [
        ("ROC-AUC", figures.auc, h.get("roc_auc")),
        ("Gini", figures.gini, h.get("gini")),
        ("KS", figures.ks, h.get("ks")),
        ("Brier", figures.brier, h.get("brier")),
        ("Approval rate", figures.approval_rate, h.get("approval_rate")),
        ("Bad rate (with outcome)", figures.bad_rate, None),
        ("Mean predicted P(default)", figures.mean_predicted, None),
        ("Calibration-in-the-large (observed - predicted)", figures.calibration_in_the_large, None),
        ("Calibration slope (1 = ideal)", figures.calibration_slope, None),
    ]
    shares = {"Approval rate", "Bad rate (with outcome)", "Mean predicted P(default)"}  # shown as percentages
    lines = []
    for name, real, hold in rows:
        show = percent if name in shares else _fmt
        lines.append({"figure": name, "realized": show(real), "holdout at training": show(hold)})
    return pd.DataFrame(lines)


def _coverage(figures: VersionPerformance) -> None:
    table = pd.DataFrame(
        [
            {
                "decision": decision_word(kind),
                "decisions": c.decisions,
                "with outcome": c.with_outcome,
                "share with outcome": percent(c.share_with_outcome),
                "bad rate": percent(c.bad_rate),
            }
            for kind, c in figures.coverage_by_decision.items()
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def _calibration(figures: VersionPerformance) -> None:
    left, right = st.columns(2)
    bands = pd.DataFrame(
        [
            {"band": b.band, "kind": kind, "rate": value}
            for b in figures.bands
            for kind, value in (("predicted", b.predicted), ("observed", b.observed))
            if value is not None
        ]
    )
    if not bands.empty:
        left.altair_chart(
            alt.Chart(bands)
            .mark_bar()
            .encode(
                x=alt.X("band:N", title="Risk band"),
                xOffset="kind:N",
                y=alt.Y("rate:Q", title="Bad rate", axis=alt.Axis(format=PERCENT_FORMAT)),
                color=alt.Color(
                    "kind:N",
                    title=None,
                    scale=alt.Scale(domain=["predicted", "observed"], range=["#9e9e9e", "#1565c0"]),
                ),
                tooltip=["band:N", "kind:N", alt.Tooltip("rate:Q", format=PERCENT_FORMAT)],
            )
            .properties(height=260, title="Predicted and observed bad rate per band"),
            width="stretch",
        )
    deciles = pd.DataFrame([d.model_dump() for d in figures.deciles])
    if not deciles.empty:
        top = float(max(deciles["predicted"].max(), deciles["observed"].max()))
        diagonal = alt.Chart(pd.DataFrame({"x": [0, top], "y": [0, top]})).mark_line(color="grey", strokeDash=[4, 4])
        points = (
            alt.Chart(deciles)
            .mark_line(point=True)
            .encode(
                x=alt.X("predicted:Q", title="Mean predicted P(default)", axis=alt.Axis(format=PERCENT_FORMAT)),
                y=alt.Y("observed:Q", title="Observed bad rate", axis=alt.Axis(format=PERCENT_FORMAT)),
                tooltip=[
                    "bin:O",
                    "n:Q",
                    alt.Tooltip("predicted:Q", format=PERCENT_FORMAT),
                    alt.Tooltip("observed:Q", format=PERCENT_FORMAT),
                ],
            )
        )
        right.altair_chart(
            (diagonal.encode(x="x:Q", y="y:Q") + points).properties(height=260, title="Reliability diagram (deciles)"),
            width="stretch",
        )


def _vintages(figures: VersionPerformance) -> None:
    palette = band_colours([b.band for b in figures.bands])  # best band first, as the Score page colours them
    rows = [
        {"month": v.month, "band": band, "bad rate": rate}
        for v in figures.vintages
        for band, rate in v.bad_rate_by_band.items()
        if rate is not None
    ]
    if not rows:
        return
    st.altair_chart(
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="Decision month (vintage)"),
            y=alt.Y("bad rate:Q", axis=alt.Axis(format=PERCENT_FORMAT)),
            color=alt.Color(
                "band:N",
                title="Band",
                scale=alt.Scale(domain=list(palette), range=list(palette.values())),  # the Score page's colours
            ),
            tooltip=["month:O", "band:N", alt.Tooltip("bad rate:Q", format=PERCENT_FORMAT)],
        )
        .properties(height=260, title="Bad rate by band across vintages"),
        width="stretch",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "month": v.month,
                    "decisions": v.decisions,
                    "with outcome": v.with_outcome,
                    "bad rate": percent(v.bad_rate),
                    "AUC": _fmt(v.auc),
                }
                for v in figures.vintages
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _oversight(summary: PerformanceSummary) -> None:
    """Human review: overrides by band, reviewer and reason; the service level; who approved the bad loans."""
    figures = summary.oversight
    if figures is None:
        return
    st.header("Human review")
    columns = st.columns(3)
    columns[0].metric("Cases decided", f"{figures.cases_decided:,}")
    rate = f" ({percent(figures.override_rate)})" if figures.override_rate is not None else ""
    columns[1].metric("Overrides of the model", f"{figures.overrides:,}{rate}")
    columns[2].metric("Decided by their due time", percent(figures.service_level))
    st.subheader("Bad rate of approved loans, by who approved them")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "risk band": band.band,
                    "approved by the model": band.model_approved,
                    "bad rate (model)": percent(band.model_bad_rate),
                    "approved by a reviewer": band.human_approved,
                    "bad rate (reviewer)": percent(band.human_bad_rate),
                }
                for band in figures.approved_by_band
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2)
    for column, title, groups in (
        (left, "Override rate by risk band", figures.override_by_band),
        (right, "Override rate by reviewer", figures.override_by_reviewer),
    ):
        column.markdown(f"**{title}**")
        rows = [
            {"group": name, "decided": g.decided, "overrides": g.overrides, "rate": percent(g.rate)}
            for name, g in groups.items()
        ]
        column.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if figures.overrides_by_reason:
        st.markdown("**Overrides by reason**")
        st.dataframe(
            pd.DataFrame([{"reason": code, "overrides": n} for code, n in figures.overrides_by_reason.items()]),
            hide_index=True,
        )


def _report_params() -> dict[str, str]:
    """The report's point in time and maturity, when an admin sets them (to see young decisions now)."""
    if not may("admin"):
        return {}
    with st.expander("Report options"):
        st.caption(
            "Decisions count once they have matured (outcomes.maturity_days). To see figures before then, make "
            "the report as of a later date or with a shorter maturity: such figures count young loans as good."
        )
        left, right = st.columns(2)
        as_of = left.text_input("As of (YYYY-MM-DD, optional)", key="performance.as_of").strip()
        maturity = right.text_input("Maturity in days (optional)", key="performance.maturity_days").strip()
    return {k: v for k, v in (("as_of", as_of), ("maturity_days", maturity)) if v}


def render() -> None:
    st.title("Performance")
    outcomes_panel()
    refresh_panel("performance", what="the performance report", params=_report_params(), key="performance")
    try:
        summary = fetch_summary(current().client)
    except NotFoundError:
        st.info(
            "**No performance report exists yet.** It compares decisions with what happened to the loans: an "
            "admin loads an outcomes file above, then makes the report with **Refresh now** (the same job as "
            "`make performance`).",
            icon=":material/query_stats:",
        )
        return
    except ApiError as exc:
        show_api_error(exc, what="read the performance summary")
        return
    st.caption(
        f"Model **{summary.model_name}**: decisions from {summary.window.start or 'the first logged'} to "
        f"{summary.window.end} (UTC), matured {summary.maturity_days} days as of {summary.as_of}; "
        f"generated {summary.generated_at}."
    )
    kind, text = _STATUS[summary.status]
    note = summary.maturity_note()
    getattr(st, kind)(f"{text} {note}" if note else text)
    for alert in summary.alerts:
        st.markdown(f"- :red[**alert**] {alert.message}")
    st.warning(f"**Selection bias.** {summary.selection_note}", icon=":material/filter_alt:")
    for version, figures in summary.versions.items():
        st.header(f"Version {version}")
        columns = st.columns(4)
        columns[0].metric("Matured decisions", f"{figures.decisions:,}")
        columns[1].metric(
            "With an outcome",
            f"{figures.with_outcome:,}",
            help=f"{percent(figures.share_with_outcome)} of the matured decisions have an outcome",
        )
        columns[2].metric(
            "Realized ROC-AUC", _fmt(figures.auc), help="holdout at training: " + _fmt(figures.holdout.get("roc_auc"))
        )
        columns[3].metric(
            "Realized Brier", _fmt(figures.brier), help="holdout at training: " + _fmt(figures.holdout.get("brier"))
        )
        st.subheader("Coverage by decision")
        _coverage(figures)
        st.subheader("Realized figures beside the holdout at training")
        st.dataframe(_figures_table(figures), hide_index=True, width="stretch")
        st.subheader("Calibration")
        _calibration(figures)
        st.subheader("Vintages")
        _vintages(figures)
    _oversight(summary)


render()
