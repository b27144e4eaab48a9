"""Decisions: look a logged decision up by request id or applicant id, see its record and reasons,
replay it with the model version and policy that made it, download its adverse-action notice.

Every call carries the role token entered in the sidebar (an auditor's or an admin's); the service records
who looked in its access log.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from ui.context import current, role_token
from ui.present import decision_word, percent, plural

_RECORD = "decisions.record"
_LIST = "decisions.list"
_REPLAY = "decisions.replay"
_NOTICE = "decisions.notice_pdf"


class DecisionsError(Exception):
    """A lookup the service refused or could not answer; the message says why, for the page."""


def _call(method: str, path: str, token: str, *, params: Mapping[str, Any] | None = None) -> httpx.Response:
    base = current().client.base_url
    if not token:
        raise DecisionsError("A token is needed to look up decisions: enter your auditor token in the sidebar.")
    try:
        response = httpx.request(
            method, f"{base}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.TransportError as exc:
        raise DecisionsError(f"The scoring service at {base} cannot be reached ({exc}).") from exc
    if response.status_code < 300:
        return response
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.reason_phrase
    if isinstance(detail, list):
        detail = "; ".join(f"{d.get('field')}: {d.get('msg')}" for d in detail if isinstance(d, Mapping))
    if response.status_code == 401:
        raise DecisionsError("A token is needed to look up decisions: enter your auditor token in the sidebar.")
    if response.status_code == 403:
        raise DecisionsError(
            "Your token may not look up decisions: it takes an auditor's (or an admin's) token."
            if "role" in str(detail)
            else "The scoring service did not accept your token: check it in the sidebar."
        )
    if response.status_code == 404:
        if path.startswith("/v1/decisions/") and detail != "Not Found":  # "Not Found": the routes are off
            raise DecisionsError(f"No decision was found with the request id {path.split('/')[3]!r}.")
        raise DecisionsError(
            "Decisions cannot be looked up on this service: it has no auditor or admin token configured."
        )
    raise DecisionsError(f"The service refused the request (HTTP {response.status_code}): {detail}")


def _reasons_html(record: Mapping[str, Any]) -> str:
    """The principal reasons, largest first, in the schema's words; each reason code on hover."""
    items = "".join(
        f'<li title="reason code {escape(str(r.get("code")))}">{escape(str(r.get("label")))}: '
        f"{escape(str(r.get('value_label') or r.get('value')))}</li>"
        for r in record.get("reasons") or []
    )
    return f"<ol>{items}</ol>" if items else ""


def _show_final(record: Mapping[str, Any]) -> None:
    """The final decision (a reviewer's, or pending) and the case trail beside the model's decision."""
    final = record.get("final_decision") or {}
    if final.get("by") == "reviewer":
        override = " (an override of the model)" if final.get("override") else ""
        st.success(
            f"Final decision: {decision_word(final['decision'])}{override}, by {final['decided_by']} "
            f"on case {final['case_id']}.",
            icon=":material/how_to_reg:",
        )
        if record.get("notice_withdrawn"):
            st.caption("The reviewer's approval withdrew the model's adverse-action notice.")
    elif final.get("by") == "pending":
        st.info(f"Waiting for a reviewer: case {final['case_id']}.", icon=":material/hourglass_empty:")
    for case in record.get("cases") or []:
        kind = "Contest" if case["kind"] == "contest" else "Referral"
        with st.expander(f"Case trail: {kind.lower()} case {case['id']}"):
            for event in case.get("history") or []:
                what = event["action"].capitalize()
                if event.get("decision"):
                    what += f": {decision_word(event['decision'])}"
                if event.get("reason_code"):
                    what += f" ({event['reason_code']})"
                who = "the service" if event["actor"] == "system" else event["actor"]
                st.markdown(f"- {event['at'].replace('T', ' ')}: {what}, by {who}")


def _show_record(record: Mapping[str, Any], token: str) -> None:
    st.subheader(f"Decision {record['request_id']}")
    cols = st.columns(4)
    cols[0].metric("The model's decision", decision_word(record.get("model_decision") or record["decision"]))
    cols[1].metric("Probability of default", percent(record["probability_of_default"]))
    cols[2].metric("Score", record["score"])
    cols[3].metric("Risk band", record["risk_band"])
    model = record["model"]
    st.caption(
        f"Decided {record['scored_at']} by {model['name']} version {model['version']} under decision policy "
        f"{record['decision_policy_version']}"
        + (f"; applicant {record['applicant_id']}" if record.get("applicant_id") else "")
    )
    _show_final(record)
    st.markdown("**Principal reasons** (largest first)")
    reasons = _reasons_html(record)
    if not reasons:
        st.write("No reasons were logged for this decision.")
    else:
        st.markdown(reasons, unsafe_allow_html=True)
    with st.expander("Inputs as logged (privacy settings applied)"):
        inputs = {name: "not provided" if value is None else str(value) for name, value in record["inputs"].items()}
        st.dataframe(pd.DataFrame({"field": list(inputs), "value": list(inputs.values())}), hide_index=True)
    left, right = st.columns(2)
    if left.button("Replay this decision", key="decisions.replay_button"):
        try:
            st.session_state[_REPLAY] = _call("POST", f"/v1/decisions/{record['request_id']}/replay", token).json()
        except DecisionsError as exc:
            st.session_state[_REPLAY] = {"error": str(exc)}
    replay = st.session_state.get(_REPLAY)
    if replay and replay.get("request_id") == record["request_id"]:
        if replay["status"] == "identical":
            left.success(
                f"Identical: re-made by version {replay['model_version']} under policy {replay['policy_version']}."
            )
        elif replay["status"] == "different":
            left.error(f"Different from the log: {', '.join(replay['differences'])}")
            left.json(replay["differences"])
        else:
            left.warning(f"Not replayable: {replay['error']}")
    elif replay and replay.get("error"):
        left.error(replay["error"])
    notice = record.get("notice")
    if notice:
        right.markdown("**Adverse-action notice**")
        for i, reason in enumerate(notice["principal_reasons"], start=1):
            right.write(f"{i}. {reason['text']}")
        if right.button("Prepare the notice (PDF)", key="decisions.notice_button"):
            try:
                pdf = _call("GET", f"/v1/decisions/{record['request_id']}/notice.pdf", token).content
                st.session_state[_NOTICE] = (record["request_id"], pdf)
            except DecisionsError as exc:
                right.error(str(exc))
        prepared = st.session_state.get(_NOTICE)
        if prepared and prepared[0] == record["request_id"]:
            right.download_button(
                "Download notice.pdf",
                data=prepared[1],
                file_name=f"notice-{record['request_id']}.pdf",
                mime="application/pdf",
            )
    else:
        right.caption("This decision needs no adverse-action notice.")


def main() -> None:
    st.title("Decisions")
    st.caption("Find a logged decision, see why it was made, replay it, print its notice. Every look is recorded.")
    token = role_token()
    if not token:
        st.info("Enter your auditor (or admin) token in the sidebar to look up decisions.", icon=":material/lock:")
    by_id, by_applicant = st.tabs(["By request id", "By applicant"])
    with by_id, st.form("decisions.by_id"):
        request_id = st.text_input("Request id", key="decisions.request_id")
        if st.form_submit_button("Look up"):
            st.session_state.pop(_LIST, None)
            try:
                st.session_state[_RECORD] = _call("GET", f"/v1/decisions/{request_id.strip()}", token).json()
            except DecisionsError as exc:
                st.session_state.pop(_RECORD, None)
                st.error(str(exc))
    with by_applicant, st.form("decisions.by_applicant"):
        applicant_id = st.text_input("Applicant id", key="decisions.applicant_id")
        start = st.text_input("From (YYYY-MM-DD, optional)", key="decisions.start")
        end = st.text_input("Until (YYYY-MM-DD, optional)", key="decisions.end")
        page = st.number_input("Page", min_value=1, value=1, step=1, key="decisions.page")
        if st.form_submit_button("List"):
            params = {"applicant_id": applicant_id.strip(), "page": int(page)}
            params |= {k: v for k, v in (("start", start.strip()), ("end", end.strip())) if v}
            try:
                st.session_state[_LIST] = _call("GET", "/v1/decisions", token, params=params).json()
            except DecisionsError as exc:
                st.session_state.pop(_LIST, None)
                st.error(str(exc))
    listing = st.session_state.get(_LIST)
    if listing:
        st.write(f"{plural(listing['total'], 'decision')} for applicant {listing['applicant_id']}, newest first")
        rows = [
            {
                "request id": d["request_id"],
                "decided": d["scored_at"],
                "decision": decision_word(d["decision"]),
                "score": d["score"],
                "version": d["model"]["version"],
            }
            for d in listing["decisions"]
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        chosen = st.selectbox("Open", [d["request_id"] for d in listing["decisions"]], key="decisions.chosen")
        if chosen:
            st.session_state[_RECORD] = next(d for d in listing["decisions"] if d["request_id"] == chosen)
    record = st.session_state.get(_RECORD)
    if record:
        _show_record(record, token)


main()
