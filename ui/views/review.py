"""Review queue: the cases the model referred, oldest due first; claim one, read the application in the
schema's words with the model's assessment and reasons, decide it with a reason code and a note.

Every call carries the role token entered in the sidebar (a reviewer's or an admin's); the service
records each action in its access
log. An override of the model's recommendation cannot be sent without a reason code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from ui.api_client import ApiError
from ui.context import current, role_token, show_api_error
from ui.form_schema import FormSchema
from ui.present import decision_word, percent, plural, reason_sentence

_CASE = "review.case"
_OUTCOME = "review.outcome"
_STATES = {"Waiting (open or claimed)": None, "Open": "open", "Claimed": "claimed", "Decided": "decided"}
_STATE_WORDS = {"open": "Waiting", "claimed": "Being reviewed", "decided": "Decided", "withdrawn": "Withdrawn"}
_ACTIONS = {
    "opened": "Case opened",
    "claimed": "Claimed",
    "released": "Released to the queue",
    "decided": "Decided",
    "contested": "Contest recorded",
}


class ReviewError(Exception):
    """A call the service refused or could not answer; the message says why, for the page."""


def _call(method: str, path: str, token: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
    base = current().client.base_url
    try:
        response = httpx.request(
            method, f"{base}{path}", params=params, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except httpx.TransportError as exc:
        raise ReviewError(f"The scoring service at {base} cannot be reached ({exc}).") from exc
    if response.status_code < 300:
        return response.json()
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.reason_phrase
    if isinstance(detail, list):
        detail = "; ".join(str(d.get("msg")) for d in detail if isinstance(d, Mapping))
    if response.status_code == 401:
        raise ReviewError("A token is needed: enter your reviewer (or admin) token in the sidebar.")
    if response.status_code == 403:
        raise ReviewError(f"Your token may not review cases: {detail}")
    if response.status_code == 404:
        raise ReviewError(f"Not found: {detail}")
    if response.status_code == 409:
        raise ReviewError(f"Someone else got there first: {detail}")
    raise ReviewError(f"The service refused the request: {detail}")


def _when(text: str | None) -> str:
    return (text or "").replace("T", " ").replace("Z", " UTC")


def _queue_frame(cases: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "case": case["id"],
            "due": _when(case["due_at"]) + (" (overdue)" if case["overdue"] else ""),
            "status": _STATE_WORDS.get(case["state"], case["state"]),
            "risk band": case["risk_band"],
            "score": case["score"],
            "probability of default": percent(case["probability_of_default"]),
            "the model recommends": decision_word(case["model_decision"]),
            "kind": "Contest" if case["kind"] == "contest" else "Referral",
            "claimed by": case["claimed_by"] or "",
        }
        for case in cases
    ]
    return pd.DataFrame(rows)


def _show_application(case: Mapping[str, Any], schema: FormSchema) -> None:
    application = case.get("application")
    if not application:
        st.caption("The application's details reach the decision log within a few seconds: reload to see them.")
        return
    st.markdown("**Principal reasons** (largest first)")
    for reason in application.get("reasons") or []:
        st.markdown(f"- {reason_sentence(reason, schema.by_name.get(str(reason.get('field'))))}")
    rows = []
    for name, value in (application.get("inputs") or {}).items():
        spec = schema.by_name.get(name)
        if spec is None:
            continue
        shown = spec.label_of(value) if spec.type == "categorical" else value
        rows.append({"field": spec.plain_label, "value": "not provided" if value is None else str(shown)})
    st.markdown("**The application**")
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _show_history(case: Mapping[str, Any], labels: Mapping[str, str]) -> None:
    st.markdown("**History**")
    for event in case.get("history") or []:
        words = _ACTIONS.get(event["action"], event["action"])
        if event["action"] == "decided":
            words += f": {decision_word(event.get('decision'))}"
            if event.get("reason_code"):
                words += f" ({labels.get(event['reason_code'], event['reason_code'])})"
            if event.get("note"):
                words += f". Note: {event['note']}"
        elif event["action"] == "contested":
            words += f": {event.get('reason')}"
        who = "the service" if event["actor"] == "system" else event["actor"]
        st.markdown(f"- {_when(event['at'])}: {words}, by {who}")


def _decide_form(case: Mapping[str, Any], token: str, reason_codes: list[dict[str, Any]]) -> None:
    labels = {reason["code"]: reason["label"] for reason in reason_codes}
    recommended = str(case["model_decision"])
    with st.form(f"review.decide.{case['id']}"):
        choice = st.radio("Final decision", ["Approve", "Decline"], horizontal=True, key="review.decision")
        options = ["(none)", *labels]
        reason = st.selectbox(
            "Reason", options, format_func=lambda code: labels.get(code, "No reason given"), key="review.reason"
        )
        note = st.text_area("Note", max_chars=2000, key="review.note")
        if not st.form_submit_button("Record the decision", type="primary"):
            return
    decision = choice.lower()
    reason_code = None if reason == "(none)" else reason
    if recommended != "review" and decision != recommended and reason_code is None:
        st.error(
            f"The model recommends {decision_word(recommended).lower()}: a different decision is an override "
            "and needs a reason. Choose one."
        )
        return
    body = {"decision": decision, "reason_code": reason_code, "note": note.strip() or None}
    try:
        decided = _call("POST", f"/v1/cases/{case['id']}/decide", token, body=body)
    except ReviewError as exc:
        st.error(str(exc))
        return
    st.session_state[_CASE] = decided
    st.session_state[_OUTCOME] = (
        f"Case {decided['id']} decided: {decision_word(decided['final_decision'])}"
        + (" (an override of the model)" if decided["override"] else "")
        + f", by {decided['decided_by']}."
    )
    st.rerun()


def _show_case(case: Mapping[str, Any], token: str, schema: FormSchema, reason_codes: list[dict[str, Any]]) -> None:
    kind = "Contest of decision" if case["kind"] == "contest" else "Referral"
    st.subheader(f"Case {case['id']}: {kind} {case['request_id']}")
    cols = st.columns(4)
    cols[0].metric("The model recommends", decision_word(case["model_decision"]))
    cols[1].metric("Probability of default", percent(case["probability_of_default"]))
    cols[2].metric("Score", case["score"])
    cols[3].metric("Risk band", case["risk_band"])
    due = f"Due {_when(case['due_at'])}" + (": overdue." if case["overdue"] else ".")
    st.caption(f"{_STATE_WORDS.get(case['state'], case['state'])}. {due}")
    if case.get("contest_reason"):
        st.info(f"The applicant contests: {case['contest_reason']}")
    _show_application(case, schema)
    _show_history(case, {reason["code"]: reason["label"] for reason in reason_codes})
    if case["state"] == "decided":
        st.success(f"Final decision: {decision_word(case['final_decision'])}, by {case['decided_by']}.")
        return
    left, right = st.columns(2)
    if left.button("Claim this case", key="review.claim"):
        try:
            st.session_state[_CASE] = _call("POST", f"/v1/cases/{case['id']}/claim", token)
            st.rerun()
        except ReviewError as exc:
            left.error(str(exc))
    if case["state"] == "claimed" and right.button("Release it to the queue", key="review.release"):
        try:
            st.session_state[_CASE] = _call("POST", f"/v1/cases/{case['id']}/release", token)
            st.rerun()
        except ReviewError as exc:
            right.error(str(exc))
    _decide_form(case, token, reason_codes)


def main() -> None:
    st.title("Review queue")
    st.caption(
        "Applications the model referred to a person, oldest due first. Claim one, read it, decide it. "
        "Every action is recorded with your name."
    )
    client = current().client
    try:
        info = client.model_info()
        schema = client.feature_schema(info)
    except ApiError as exc:
        show_api_error(exc, what="show the review queue")
        return
    reason_codes = list((info.get("review") or {}).get("reason_codes") or [])
    token = role_token()
    if not token:
        st.info("Enter your reviewer (or admin) token in the sidebar to see the queue.", icon=":material/lock:")
        return
    outcome = st.session_state.pop(_OUTCOME, None)
    if outcome:
        st.success(outcome)
    filters = st.columns(3)
    state = _STATES[filters[0].selectbox("Show", list(_STATES), key="review.state")]
    bands = [band["name"] for band in info.get("risk_bands") or []]
    band = filters[1].selectbox("Risk band", ["All", *bands], key="review.band")
    overdue = filters[2].checkbox("Overdue only", key="review.overdue")
    params: dict[str, Any] = {"page_size": 200}
    params |= {k: v for k, v in (("state", state), ("band", None if band == "All" else band)) if v}
    if overdue:
        params["overdue"] = "true"
    try:
        queue = _call("GET", "/v1/cases", token, params=params)
    except ReviewError as exc:
        st.error(str(exc))
        return
    overdue_count = sum(case["overdue"] for case in queue["cases"])
    st.write(plural(queue["total"], "case") + (f", {overdue_count} overdue" if overdue_count else ""))
    if not queue["cases"]:
        return
    st.dataframe(_queue_frame(queue["cases"]), hide_index=True)
    ids = [case["id"] for case in queue["cases"]]
    selected = st.session_state.get(_CASE)
    default = ids.index(selected["id"]) if selected and selected["id"] in ids else 0
    chosen = st.selectbox("Open case", ids, index=default, format_func=lambda n: f"Case {n}", key="review.chosen")
    if not selected or selected["id"] != chosen or "application" not in selected:
        try:
            selected = _call("GET", f"/v1/cases/{chosen}", token)
        except ReviewError as exc:
            st.error(str(exc))
            return
        st.session_state[_CASE] = selected
    _show_case(selected, token, schema, reason_codes)


main()
