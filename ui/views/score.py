"""Score an applicant: a form built from the served model's schema, the decision and its reasons.

Required fields start empty and Score refuses until they are set; each value
is checked against the schema's rule as it is entered, so nothing out of range
or malformed is ever sent. A result belongs to the inputs it was scored on: a
changed input clears it. The entries survive an API failure (and a page
switch), and a failed call can be retried as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.context import current, show_api_error, technical_details
from ui.form_schema import FormSchema
from ui.present import (
    DECISION_COLOURS,
    DECISION_HELP,
    band_colours,
    decision_word,
    percent,
    plural,
    reason_sentence,
    recourse_html,
    summary_html,
)
from ui.result_graphics import gauge_html, reasons_chart
from ui.score_form import raw_inputs, render_form, score_state, submit

_INFO_KEY = "score.model_info"  # the last /v1/model answer, to keep the form while the API is away
_SR_ONLY = "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0"


# ------------------------------------------------------------------ the result


def _announcement(text: str) -> None:
    """A polite live region that is always on the page, so screen readers read each new result."""
    st.markdown(
        f'<div role="status" aria-live="polite" aria-atomic="true" data-testid="score-announcement" '
        f'style="{_SR_ONLY}">{escape(text)}</div>',
        unsafe_allow_html=True,
    )


def _result_summary(result: Mapping[str, Any]) -> str:
    return (
        f"{decision_word(result.get('decision'))}: probability of default "
        f"{percent(float(result['probability_of_default']))}, risk band {result.get('risk_band')}, "
        f"score {result.get('score')}."
    )


def _render_oversight(result: Mapping[str, Any]) -> None:
    """The case a referral opened, and the model's own decision while automation is paused."""
    automation = result.get("automation")
    if automation:
        st.warning(
            f"Automation is paused: every application goes to a reviewer. The model alone would have "
            f"{decision_word(automation.get('model_decision')).lower()} this one.",
            icon=":material/pause_circle:",
        )
    case = result.get("case")
    if case:
        st.info(
            f"Referred: case {case['id']} opened. A reviewer decides it on the Review queue page.",
            icon=":material/assignment_ind:",
        )


def _render_result(result: Mapping[str, Any], info: Mapping[str, Any], schema: FormSchema) -> None:
    decision = str(result.get("decision", ""))
    probability = float(result["probability_of_default"])
    band = str(result.get("risk_band", ""))
    colour = DECISION_COLOURS.get(decision, "#444444")
    band_colour = band_colours([b["name"] for b in info.get("risk_bands") or [{"name": band}]]).get(band, "#555555")
    st.subheader("Decision")
    applicant_id = score_state().get("applicant_id")
    st.markdown(
        f"Request id **`{escape(str(result.get('request_id')))}`**"
        + (f" · Applicant id **`{escape(applicant_id)}`**" if applicant_id else " · no applicant id given")
    )
    st.markdown(
        f'<div data-testid="decision-banner" style="display:flex;flex-wrap:wrap;gap:0.5rem;align-items:center;'
        f"justify-content:space-between;background:{colour};color:#ffffff;padding:0.8rem 1.2rem;"
        f'border-radius:0.5rem;font-size:1.4rem;font-weight:600">'
        f"<span>{escape(decision_word(decision))}</span>"
        f'<span style="background:#ffffff;color:#111111;border-radius:0.4rem;padding:0 0.6rem;font-size:1.1rem;'
        f'white-space:nowrap"><span aria-hidden="true" style="display:inline-block;width:0.8em;height:0.8em;'
        f'border-radius:50%;border:1px solid #111111;background:{band_colour};margin-right:0.35em"></span>'
        f"Risk band {escape(band)}</span></div>",
        unsafe_allow_html=True,
    )
    if decision in DECISION_HELP:
        st.caption(DECISION_HELP[decision])
    _render_oversight(result)
    top = st.columns(2)
    top[0].metric("Probability of default", percent(probability))
    top[1].metric("Score", result.get("score"), help="Scorecard points: higher means lower risk.")
    gauge = gauge_html(probability, band, info)
    if gauge is not None:
        st.markdown(gauge, unsafe_allow_html=True)
        st.caption("Where this applicant sits on the risk bands; the dashed lines are the decision cut-offs.")

    st.subheader("Principal reasons")
    reasons = list(result.get("reasons") or [])
    if reasons:
        st.caption(
            "The factors that raised this applicant's assessed risk the most, compared with a typical applicant. "
            "They are what the model learned from past loans: a value that sounds favourable can still raise "
            "the risk when it went with more defaults in that history."
        )
        items = "".join(
            f'<li title="reason code {escape(str(reason.get("code")))}">'
            f"{escape(reason_sentence(reason, schema.by_name.get(str(reason.get('field', '')))))}</li>"
            for reason in reasons
        )  # the raw code only on hover
        st.markdown(f"<ul>{items}</ul>", unsafe_allow_html=True)
        chart, words = reasons_chart(reasons, schema)
        st.altair_chart(chart, width="stretch", alt=words)
    else:
        st.info("No factor raised this applicant's assessed risk above a typical applicant's.")

    if decision in ("decline", "review"):
        _render_recourse(result)

    model = result.get("model") or {}
    st.caption(f"Scored by model version {model.get('version')} at {result.get('scored_at')}.")
    st.download_button(
        "Printable decision summary",
        data=summary_html(result, schema, applicant_id=score_state().get("applicant_id") or None),
        file_name=f"decision-{result.get('request_id')}.html",
        mime="text/html",
        icon=":material/print:",
        help="A one-page summary for the file: open it and print it, or save it as a PDF.",
    )
    with st.expander("Technical details"):
        st.markdown(
            f"Model **{model.get('name')}** version **{model.get('version')}** (alias `{model.get('alias')}`), "
            f"decision policy `{result.get('decision_policy_version')}`, request id `{result.get('request_id')}`. "
            "Reasons are TreeSHAP attributions in log-odds of default:"
        )
        if reasons:
            rows = [
                {"code": r.get("code"), "field": r.get("field"), "value": str(r.get("value")),
                 "contribution": r.get("contribution")}
                for r in reasons
            ]  # fmt: skip
            st.dataframe(pd.DataFrame(rows), hide_index=True)


def _render_recourse(result: Mapping[str, Any]) -> None:
    """What would change the decision: the service's alternatives, each already scored by the served model."""
    st.subheader("What would change the decision")
    if not result.get("recourse"):
        st.info(str(result.get("recourse_note") or "No alternative was found within the configured limits."))
        return
    st.caption(
        "Other applications the same model would decide differently: each changes only what an applicant "
        "can act on (a smaller amount, a shorter term, more savings), and was scored before it is shown. "
        "The easiest change comes first."
    )
    st.markdown(recourse_html(result) or "", unsafe_allow_html=True)


def _changed_fields(schema: FormSchema, before: Mapping[str, Any]) -> list[str]:
    now = raw_inputs(schema)
    return [spec.plain_label for spec in schema.fields if now.get(spec.name) != before.get(spec.name)]


def _render_outcome(client: ApiClient, info: Mapping[str, Any], schema: FormSchema) -> None:
    """The result column: what the last Score gave, unless the inputs have changed since."""
    state = score_state()
    result, error, refused = state.get("result"), state.get("error"), state.get("refused") or {}
    changed = _changed_fields(schema, state.get("inputs") or {}) if (result or error) else []
    if changed:
        _announcement("The application changed: the previous result was cleared.")
        st.info(
            f"**The application changed** since it was scored ({', '.join(changed)}), so the previous result "
            "was cleared. Press **Score applicant** for a decision on the current entries.",
            icon=":material/update:",
        )
        return
    if error is not None:
        _announcement("Not scored: the scoring service could not be used. Your entries are kept.")
        show_api_error(error, what="score this applicant")
        if not isinstance(error, RequestRejectedError):
            st.caption("Your entries are kept.")
            st.button("Try again", icon=":material/refresh:", on_click=submit, args=(client, schema))
        return
    if result:
        _announcement(_result_summary(result))
        _render_result(result, info, schema)
        return
    if refused:
        labels = ", ".join(
            schema.by_name[name].plain_label if name in schema.by_name else "Applicant id" for name in refused
        )
        count = plural(len(refused), "field")
        needs = "needs" if len(refused) == 1 else "need"
        _announcement(f"Not scored: {count} {needs} attention: {labels}.")
        st.warning(
            f"**Not scored yet: {count} {needs} attention** ({labels}). Each is marked under its input.",
            icon=":material/edit_note:",
        )
        return
    _announcement("")
    st.info("Fill in the application and press **Score applicant**: the decision and its reasons appear here.")


def _model_info(client: ApiClient) -> tuple[Mapping[str, Any] | None, ApiError | None]:
    """The served model's description, or the last one seen when the service is away now."""
    try:
        info = client.model_info()
        client.feature_schema(info)
    except ApiError as exc:
        return st.session_state.get(_INFO_KEY), exc
    st.session_state[_INFO_KEY] = info
    return info, None


def render() -> None:
    st.title("Score an applicant")
    client = current().client
    info, failure = _model_info(client)
    if info is None:
        show_api_error(failure, what="show the application form")  # type: ignore[arg-type]
        st.button("Try again", icon=":material/refresh:")
        return
    schema = client.feature_schema(info)
    if failure is not None:
        st.warning(
            "**The scoring service is not reachable right now.** The form below is the one it served last; "
            "your entries are kept, and Score works again as soon as the service is back.",
            icon=":material/cloud_off:",
        )
        technical_details(failure)
    else:
        st.caption(f"Served model version {info.get('version')}. Fields and their rules come from that model's schema.")
    form_column, result_column = st.columns([3, 2], gap="large")
    with form_column:
        render_form(client, schema)
    with result_column:
        _render_outcome(client, info, schema)


render()
