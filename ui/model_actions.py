"""The Models page's actions: promote, approve and roll back, each through a confirmation that
names the move, a dry run that shows the gates, and the outcome right under the button pressed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import streamlit as st

from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.context import role_token, show_api_error, technical_details

_OUTCOME_KEY = "models.outcome"  # (action, kind, payload) of the last admin call
_PENDING_KEY = "models.pending"  # the move waiting for confirmation
UNDO = "undo"


def v_label(version: Any) -> str:
    """A version as the page names it: "v3", or "none"."""
    return f"v{version}" if version not in (None, "") else "none"


# ------------------------------------------------------------------ actions


def _form_values(action: str) -> tuple[str, str, str | None]:
    token = role_token()
    reason = (st.session_state.get(f"{action}.reason") or "").strip()
    version = st.session_state.get(f"{action}.version")
    return token, reason, version


def ask(action: str, move: str) -> None:
    """First press: check the form, then ask for confirmation of the move it names."""
    token, reason, version = _form_values(action)
    st.session_state[_OUTCOME_KEY] = None
    if not token or not reason:
        st.session_state[_PENDING_KEY] = None
        missing = "Enter your admin token in the sidebar" if not token else "Give a reason"
        st.session_state[_OUTCOME_KEY] = (action, "missing", f"{missing}: every move of production records one.")
        return
    st.session_state[_PENDING_KEY] = {"action": action, "move": move, "version": version, "reason": reason}


def _cancel() -> None:
    st.session_state[_PENDING_KEY] = None


def _confirm(client: ApiClient) -> None:
    """Second press: run the admin call before the page re-renders, so the tables show its effect."""
    pending = st.session_state.get(_PENDING_KEY) or {}
    st.session_state[_PENDING_KEY] = None
    action = pending.get("action", "")
    token, _, _ = _form_values(action)
    version, reason = pending.get("version"), pending.get("reason", "")
    try:
        if action == "promote":
            force = bool(st.session_state.get("promote.force"))
            answer = client.promote(token=token, version=version, reason=reason, force=force)
        else:
            answer = client.rollback(token=token, version=None if version == UNDO else version, reason=reason)
    except ApiError as exc:
        st.session_state[_OUTCOME_KEY] = (action, "refused" if _is_refusal(exc) else "error", exc)
    else:
        st.session_state[_OUTCOME_KEY] = (action, "done", answer)


def dry_run(client: ApiClient) -> None:
    token, reason, version = _form_values("promote")
    st.session_state[_PENDING_KEY] = None
    if not token:
        st.session_state[_OUTCOME_KEY] = ("promote", "missing", "Enter your admin token in the sidebar.")
        return
    try:
        answer = client.promote(token=token, version=version, reason=reason or "dry run", dry_run=True)
    except RequestRejectedError as exc:
        kind = "no_dry_run" if exc.names("dry_run") else "refused"
        st.session_state[_OUTCOME_KEY] = ("promote", kind, exc)
    except ApiError as exc:
        st.session_state[_OUTCOME_KEY] = ("promote", "error", exc)
    else:
        st.session_state[_OUTCOME_KEY] = ("promote", "dry_run", answer)


def _is_refusal(exc: ApiError) -> bool:
    """A refusal of the move itself (gates, nothing to roll back), not a failure of the follow-up reload."""
    return isinstance(exc, RequestRejectedError) and exc.status == 422 and not _event_of(exc.body)


def _event_of(body: Any) -> Mapping[str, Any] | None:
    event = body.get("event") if isinstance(body, Mapping) else None
    return event if isinstance(event, Mapping) and "to_version" in event else None


def _move_text(event: Mapping[str, Any]) -> str:
    return f"{event.get('alias')}: {v_label(event.get('from_version'))} → {v_label(event.get('to_version'))}"


# ------------------------------------------------------------------ outcome, next to the action


# each promotion gate in words (its code on hover): what it asks of the challenger on the holdout
GATE_WORDS = {
    "min_auc": "Holdout ROC-AUC at least {limit}",
    "max_brier": "Holdout Brier score at most {limit}",
    "min_disparate_impact": "Disparate impact ratio at least {limit}",
    "max_auc_drop": "ROC-AUC at most {limit} below the champion's",
}


def gate_sentence(gate: Mapping[str, Any]) -> str:
    """ "Holdout ROC-AUC at least 0.700: 0.803, passed." """
    name = str(gate.get("name", ""))
    limit, value = gate.get("limit"), gate.get("value")
    limit_text = f"{limit:.3f}" if isinstance(limit, int | float) else str(limit)
    words = GATE_WORDS.get(name, name.replace("_", " ").capitalize() + " {limit}").format(limit=limit_text)
    figure = f"{value:.3f}" if isinstance(value, int | float) else "not computable"
    return f"{words}: {figure}, {'passed' if gate.get('passed') else 'failed'}."


def _show_gates(gates: Sequence[Mapping[str, Any]]) -> None:
    items = "".join(
        f'<li title="gate {escape(str(gate.get("name")))}">{"✅" if gate.get("passed") else "❌"} '
        f"{escape(gate_sentence(gate))}</li>"
        for gate in gates
    )
    st.markdown(f'<ul style="list-style:none;padding-left:0">{items}</ul>', unsafe_allow_html=True)


def _reload_text(reload: Any) -> str:
    if not isinstance(reload, Mapping):
        return ""
    outcome, version = reload.get("outcome"), reload.get("version")
    if outcome == "loaded":
        return f" The scoring service now serves {v_label(version)}."
    if outcome == "unchanged":
        return f" The scoring service serves {v_label(version)}."
    return f" The scoring service did not load it ({outcome}: {reload.get('error')})."


def show_outcome(action: str) -> None:
    outcome = st.session_state.get(_OUTCOME_KEY)
    if outcome is None or outcome[0] != action:
        return
    _, kind, payload = outcome
    verb = "Promotion" if action == "promote" else "Rollback"
    with st.container(key=f"outcome-{action}"):
        if kind == "done" and isinstance(payload.get("approval"), Mapping):
            request = payload["approval"]
            st.info(
                f"**Promotion requested: waiting for approval.** A second person with the approver role "
                f"approves or rejects moving production to {v_label(request.get('version'))} under Pending approvals; "
                "nothing has moved yet.",
                icon=":material/pending_actions:",
            )
        elif kind == "done":
            event = _event_of(payload) or {}
            moved = f" `{_move_text(event)}`." if event else ""
            st.success(f"**{verb} done.**{moved}{_reload_text(payload.get('reload'))}", icon=":material/check_circle:")
        elif kind == "missing":
            st.warning(f"**{verb} not sent.** {payload}")
        elif kind == "dry_run":
            verdict = "would be promoted" if payload.get("would_promote") else "would be refused"
            target = payload.get("version") or st.session_state.get("promote.version")
            st.info(f"**Dry run: {v_label(target)} {verdict}.** Nothing was moved.", icon=":material/fact_check:")
            gates = payload.get("gates") or []
            if gates:
                _show_gates(gates)
        elif kind == "no_dry_run":
            st.info(
                "**This scoring service does not offer a dry run yet**, so the gates cannot be checked without "
                "promoting. Nothing was moved.",
                icon=":material/info:",
            )
            technical_details(payload)
        elif kind == "refused":
            gates = "\n".join(f"- {p.message}" for p in payload.problems) or f"- {payload}"
            st.error(f"**{verb} refused**; production did not move:\n\n{gates}", icon=":material/gpp_bad:")
        else:
            event = _event_of(payload.body)
            if event is not None:
                st.error(
                    f"**Production moved** (`{_move_text(event)}`), **but the scoring service did not switch to it.**"
                    f"{_reload_text((payload.body or {}).get('reload'))} It keeps serving the version it had.",
                    icon=":material/sync_problem:",
                )
                technical_details(payload)
            else:
                show_api_error(payload, what="change production")


def confirmation(client: ApiClient, action: str) -> None:
    pending = st.session_state.get(_PENDING_KEY)
    if not pending or pending.get("action") != action:
        return
    with st.container(border=True, key=f"confirm-{action}"):
        st.markdown(f"**Move `{pending['move']}`?** Reason recorded: _{pending['reason']}_")
        yes, no = st.columns(2)
        yes.button(
            f"Confirm: {pending['move']}", type="primary", on_click=_confirm, args=(client,), key=f"{action}.confirm"
        )
        no.button("Cancel", on_click=_cancel, key=f"{action}.cancel")
