"""The Models page's pending approvals: who asked to promote what, and an approver's decision on it.

A promotion that passes the gates waits here when the service requires a second person's
approval; another person approves it (production moves) or rejects it, with a reason and the
approver token entered in the sidebar. The service refuses the requester's own approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from ui.api_client import ApiClient, ApiError
from ui.context import role_token, show_api_error

_OUTCOME_KEY = "approvals.outcome"  # (approval id, kind, payload) of the last decision


def _decide(client: ApiClient, approval_id: str, approve: bool) -> None:
    reason = (st.session_state.get(f"approval.{approval_id}.reason") or "").strip()
    token = role_token()
    if not reason or not token:
        missing = "Enter your approver token in the sidebar" if not token else "Give a reason"
        st.session_state[_OUTCOME_KEY] = (approval_id, "missing", f"{missing}: every decision records one.")
        return
    try:
        answer = client.decide_approval(approval_id, approve=approve, token=token, reason=reason)
    except ApiError as exc:
        st.session_state[_OUTCOME_KEY] = (approval_id, "error", exc)
    else:
        st.session_state[_OUTCOME_KEY] = (approval_id, "approved" if approve else "rejected", answer)


def _outcome(approval_id: str) -> None:
    outcome = st.session_state.get(_OUTCOME_KEY)
    if outcome is None or outcome[0] != approval_id:
        return
    _, kind, payload = outcome
    if kind == "approved":
        served = payload.get("served_version")
        st.success(
            f"**Approved.** Production moved; the scoring service now serves v{served}.", icon=":material/check_circle:"
        )
    elif kind == "rejected":
        st.info("**Rejected.** Production did not move.", icon=":material/block:")
    elif kind == "missing":
        st.warning(f"**Not sent.** {payload}")
    else:
        show_api_error(payload, what="decide on the promotion request")


def _request_box(client: ApiClient, approval: Mapping[str, Any]) -> None:
    approval_id = str(approval["id"])
    with st.container(border=True, key=f"approval-{approval_id}"):
        champion = approval.get("champion_version")
        st.markdown(
            f"**Promote v{approval['version']}** (production holds "
            f"{'v' + str(champion) if champion else 'nothing'}), asked by {approval['requested_by']} "
            f"at {str(approval['requested_at'])[:16].replace('T', ' ')}: _{approval['reason']}_"
        )
        links = []
        if approval.get("validation_report"):
            links.append(f"the validation report of v{approval['version']} (Validation reports, below)")
        if approval.get("experiment_id"):
            links.append(f"experiment {approval['experiment_id']} (Experiments page)")
        expires = str(approval["expires_at"])[:16].replace("T", " ")
        st.caption(f"Expires {expires} UTC. Evidence: {'; '.join(links) if links else 'the promotion gates'}.")
        if approval.get("force"):
            st.warning("The requester overrode failed gates; the reason above says why.")
        st.text_input("Reason", key=f"approval.{approval_id}.reason", placeholder="e.g. independent validation done")
        left, right = st.columns(2)
        left.button(
            "Approve",
            type="primary",
            on_click=_decide,
            args=(client, approval_id, True),
            key=f"approval.{approval_id}.approve",
        )
        right.button(
            "Reject", on_click=_decide, args=(client, approval_id, False), key=f"approval.{approval_id}.reject"
        )
        _outcome(approval_id)


def render_approvals(client: ApiClient) -> None:
    """The pending requests, each with approve and reject; the last decision's outcome under it."""
    try:
        answer = client.approvals()
    except ApiError as exc:
        show_api_error(exc, what="read the promotion requests")
        return
    if not answer.get("required"):
        st.caption("Promotions move production at once: no second person's approval is configured.")
    approvals = answer.get("approvals") or []
    decided = st.session_state.get(_OUTCOME_KEY)
    shown = [a for a in approvals if a.get("state") == "pending" or (decided and decided[0] == a.get("id"))]
    if not shown:
        st.info("No promotion request is waiting for approval.")
        return
    for approval in shown:
        _request_box(client, approval)
