"""Experiments: run a challenger beside the champion (shadow) or for a random share (split),
compare the arms live and on outcomes, and stop. Every figure comes from the API
(``GET /v1/experiments/{id}``); starting and stopping need the admin token (entered in the sidebar)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.api_client import ApiClient, ApiError
from ui.context import current, role_token, show_api_error
from ui.present import DECISION_WORDS, PERCENT_FORMAT, decision_word, percent

_OUTCOME_KEY = "experiments.outcome"  # (action, kind, payload) of the last start or stop
_DECISIONS = ("approve", "review", "decline")
_MODES = {
    "shadow": "Shadow: the challenger scores beside the champion; answers never change",
    "split": "Split: the challenger decides for a random share of applicants",
}
_ARMS = {"champion": "Champion", "challenger": "Challenger"}


def _rate_text(rate: Mapping[str, Any]) -> str:
    """A rate and its interval in words: "12.3% (10.1% to 14.6%)"."""
    if rate.get("value") is None:
        return "no data"
    return f"{percent(rate['value'])} ({percent(rate['low'])} to {percent(rate['high'])})"


def _start(client: ApiClient) -> None:
    state = st.session_state
    token, reason = role_token(), (state.get("experiment.reason") or "").strip()
    if not token or not reason:
        missing = "Enter your admin token in the sidebar" if not token else "Give a reason"
        state[_OUTCOME_KEY] = ("start", "missing", f"{missing}: the ledger records who started it and why.")
        return
    try:
        answer = client.start_experiment(
            token=token,
            challenger_version=str(state.get("experiment.version")),
            mode=str(state.get("experiment.mode")),
            share=float(state.get("experiment.share_percent") or 0) / 100,
            reason=reason,
        )
    except ApiError as exc:
        state[_OUTCOME_KEY] = ("start", "error", exc)
    else:
        state[_OUTCOME_KEY] = ("start", "done", answer)
        state["experiments.select"] = answer["experiment"]["id"]  # show the new experiment


def _stop(client: ApiClient, experiment_id: str) -> None:
    state = st.session_state
    token, reason = role_token(), (state.get("experiment.stop_reason") or "").strip()
    if not token or not reason:
        missing = "Enter your admin token in the sidebar" if not token else "Give a reason"
        state[_OUTCOME_KEY] = ("stop", "missing", f"{missing}: the ledger records who stopped it and why.")
        return
    try:
        answer = client.stop_experiment(experiment_id, token=token, reason=reason)
    except ApiError as exc:
        state[_OUTCOME_KEY] = ("stop", "error", exc)
    else:
        state[_OUTCOME_KEY] = ("stop", "done", answer)


def _show_outcome(action: str) -> None:
    outcome = st.session_state.get(_OUTCOME_KEY)
    if outcome is None or outcome[0] != action:
        return
    _, kind, payload = outcome
    verb = "Experiment started" if action == "start" else "Experiment stopped"
    if kind == "done":
        experiment = payload["experiment"]
        st.success(
            f"**{verb}.** {experiment['id']}: version {experiment['challenger_version']} "
            f"against version {experiment['champion_version']}.",
            icon=":material/check_circle:",
        )
    elif kind == "missing":
        st.warning(f"**Not sent.** {payload}")
    else:
        show_api_error(payload, what="start the experiment" if action == "start" else "stop the experiment")


def _start_form(client: ApiClient, versions: Sequence[str], served: str | None) -> None:
    with st.container(border=True, key="experiment-start-form"):
        st.markdown("**Start an experiment**")
        st.caption("One at a time. The challenger is downloaded and checked like the served version first.")
        candidates = [v for v in versions if v != served] or list(versions)
        st.selectbox("Challenger version", candidates, key="experiment.version", format_func=lambda v: f"v{v}")
        st.radio("Mode", list(_MODES), key="experiment.mode", format_func=_MODES.get)
        st.number_input(
            "Share of applicants (%)",
            min_value=1.0,
            max_value=100.0,
            value=10.0,
            step=1.0,
            key="experiment.share_percent",
        )
        st.text_input("Reason", key="experiment.reason", placeholder="e.g. shadow v2 before the quarterly refresh")
        st.button("Start", type="primary", on_click=_start, args=(client,), key="experiment.start")
        _show_outcome("start")


def _stop_form(client: ApiClient, experiment_id: str) -> None:
    with st.container(border=True, key="experiment-stop-form"):
        st.markdown("**Stop this experiment**: every decision is the champion's again.")
        st.text_input("Reason", key="experiment.stop_reason", placeholder="e.g. enough applicants seen")
        st.button("Stop", on_click=_stop, args=(client, experiment_id), key="experiment.stop")
        _show_outcome("stop")


def _arms_table(report: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for arm in report["arms"]:
        row = {
            "arm": _ARMS.get(arm["arm"], arm["arm"]),
            "version": f"v{arm['version']}",
            "applicants": arm["applicants"],
            "share of all": percent(arm.get("share"), missing="no data"),
        }
        for code in _DECISIONS:
            row[DECISION_WORDS[code]] = _rate_text(arm["rates"][code])
        row["median score"] = arm["score_quantiles"].get("p50")
        p50, p99 = arm.get("latency_p50_ms"), arm.get("latency_p99_ms")
        row["latency (median, p99)"] = "not measured" if p50 is None else f"{p50:.1f} ms, {p99:.1f} ms"
        rows.append(row)
    return pd.DataFrame(rows)


def _scores_chart(report: Mapping[str, Any]) -> None:
    edges = report.get("score_edges") or []
    labels = [f"below {edges[0]:.0f}" if edges else "all"] + [f"{e:.0f} and up" for e in edges]
    rows = []
    for arm in report["arms"]:
        counts = arm["score_histogram"]
        total = max(sum(counts), 1)
        name = _ARMS.get(arm["arm"], arm["arm"])
        rows += [{"score": label, "arm": name, "share": c / total} for label, c in zip(labels, counts, strict=False)]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("score:N", sort=labels, title="Score", axis=alt.Axis(labelAngle=0)),
            xOffset="arm:N",
            y=alt.Y("share:Q", title="Share of the arm's applicants", axis=alt.Axis(format=PERCENT_FORMAT)),
            color=alt.Color("arm:N", title=None),
            tooltip=["score:N", "arm:N", alt.Tooltip("share:Q", format=PERCENT_FORMAT)],
        )
        .properties(height=260)
    )
    st.altair_chart(chart, width="stretch")


def _disagreement(report: Mapping[str, Any]) -> None:
    found = report.get("disagreement")
    if not found:
        return
    st.markdown("**Where the versions disagree** (the same applicants, champion's decision by row)")
    matrix = found["matrix"]
    table = pd.DataFrame(
        {f"Challenger: {decision_word(b)}": [matrix[a][b] for a in _DECISIONS] for b in _DECISIONS},
        index=[f"Champion: {decision_word(a)}" for a in _DECISIONS],
    )
    st.dataframe(table)
    bands = pd.DataFrame(found["by_band"]).rename(
        columns={
            "band": "risk band",
            "applicants": "applicants",
            "would_change": "decision would change",
            "would_approve": "would be approved (now not)",
            "would_not_approve": "would not be approved (now approved)",
        }
    )
    st.markdown("**Applicants whose decision would change, by risk band**")
    st.dataframe(bands, hide_index=True)


def _outcomes(report: Mapping[str, Any]) -> None:
    outcomes = report.get("outcomes")
    if not outcomes:
        return
    rows = []
    for arm in outcomes["arms"]:
        rows.append(
            {
                "arm": _ARMS.get(arm["arm"], arm["arm"]),
                "matured outcomes": arm["outcomes"],
                "bad rate": _rate_text(arm["bad_rate"]) if arm["outcomes"] else "no outcomes yet",
                "realized AUC": (
                    f"{arm['auc']['value']:.3f} ({arm['auc']['low']:.3f} to {arm['auc']['high']:.3f})"
                    if arm["auc"].get("value") is not None and arm["auc"].get("low") is not None
                    else "not enough outcomes"
                ),
            }
        )
    st.markdown("**On outcomes, once loans mature**")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(outcomes["coverage_note"])


def _comparison(client: ApiClient, experiment_id: str) -> None:
    try:
        answer = client.experiment(experiment_id)
    except ApiError as exc:
        show_api_error(exc, what="read the experiment")
        return
    experiment, report = answer["experiment"], answer["report"]
    state = "running" if experiment.get("active") else f"stopped at {str(experiment.get('stopped_at'))[:16]}"
    st.markdown(
        f"**{experiment['id']}**: {experiment['mode']} of v{experiment['challenger_version']} against "
        f"v{experiment['champion_version']} for {percent(experiment['share'])} of applicants, {state}. "
        f"Started by {experiment['started_by']}: _{experiment['reason']}_"
    )
    with st.container(key="experiment-verdicts"):
        for sentence in report["verdicts"] or ["No applicant has been decided in this experiment yet."]:
            st.info(sentence, icon=":material/lightbulb:")
    st.markdown("**The arms**")
    st.dataframe(_arms_table(report), hide_index=True, key="experiment-arms")
    if report["applicants"]:
        _scores_chart(report)
    _disagreement(report)
    _outcomes(report)
    if experiment.get("active"):
        _stop_form(client, experiment["id"])


def render() -> None:
    st.title("Experiments")
    st.caption(
        "A challenger first scores live applicants in the shadow, then decides for a small random group; "
        "the arms are compared on live figures and, as loans mature, on outcomes."
    )
    client = current().client
    try:
        listing = client.experiments()
        registry = client.registry()
    except ApiError as exc:
        show_api_error(exc, what="read the experiments")
        return
    experiments = listing.get("experiments") or []
    versions = sorted((str(v["version"]) for v in registry.get("versions") or []), key=int, reverse=True)
    served = (registry.get("aliases") or {}).get("production")
    running = next((e for e in experiments if e.get("active")), None)
    if running is None and versions:
        _start_form(client, versions, str(served) if served else None)
        _show_outcome("stop")
    if not experiments:
        st.info("No experiment has run yet.")
        return
    if running is not None:
        _show_outcome("start")
    ids = [e["id"] for e in experiments]
    picked = st.selectbox(
        "Experiment",
        ids,
        key="experiments.select",
        format_func=lambda i: next(
            f"{e['id']} ({e['mode']}, v{e['challenger_version']}, {'running' if e['active'] else 'stopped'})"
            for e in experiments
            if e["id"] == i
        ),
    )
    _comparison(client, picked)


render()
