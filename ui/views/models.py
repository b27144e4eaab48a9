"""Models: the registry's versions and aliases, the alias history, promote, approve and roll back.

Every move of production goes through a confirmation that names it
("production: v1 → v2"); a dry run shows the promotion gates without moving
anything; the outcome of an action appears right under the button pressed.
Rollback without a version undoes the last move of the serving alias.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.approvals import render_approvals
from ui.context import current, role_token, show_api_error, technical_details
from ui.present import version_rows
from ui.report_view import show_report

_OUTCOME_KEY = "models.outcome"  # (action, kind, payload) of the last admin call
_PENDING_KEY = "models.pending"  # the move waiting for confirmation
_UNDO = "undo"
_HEADLINE_METRICS = ("roc_auc_cv_mean", "roc_auc", "gini", "ks", "brier", "expected_cost")
_SERVING_ALIAS = "production"
_REPORT_KEY = "models.report_version"  # the report picker's choice
_REPORT_SERVED_KEY = "models.report_served"  # the served version when the picker was last set to it


def _v(version: Any) -> str:
    return f"v{version}" if version not in (None, "") else "none"


def last_move(history: Sequence[Mapping[str, Any]], alias: str) -> Mapping[str, Any] | None:
    """The newest event that moved ``alias`` (the history is oldest first)."""
    moves = [e for e in history if e.get("alias") == alias]
    return max(moves, key=lambda e: (e.get("sequence") or 0, str(e.get("at")))) if moves else None


# ------------------------------------------------------------------ actions


def _form_values(action: str) -> tuple[str, str, str | None]:
    token = role_token()
    reason = (st.session_state.get(f"{action}.reason") or "").strip()
    version = st.session_state.get(f"{action}.version")
    return token, reason, version


def _ask(action: str, move: str) -> None:
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
            answer = client.rollback(token=token, version=None if version == _UNDO else version, reason=reason)
    except ApiError as exc:
        st.session_state[_OUTCOME_KEY] = (action, "refused" if _is_refusal(exc) else "error", exc)
    else:
        st.session_state[_OUTCOME_KEY] = (action, "done", answer)


def _dry_run(client: ApiClient) -> None:
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
    return f"{event.get('alias')}: {_v(event.get('from_version'))} → {_v(event.get('to_version'))}"


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
        return f" The scoring service now serves {_v(version)}."
    if outcome == "unchanged":
        return f" The scoring service serves {_v(version)}."
    return f" The scoring service did not load it ({outcome}: {reload.get('error')})."


def _show_outcome(action: str) -> None:
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
                f"approves or rejects moving production to {_v(request.get('version'))} under Pending approvals; "
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
            st.info(f"**Dry run: {_v(target)} {verdict}.** Nothing was moved.", icon=":material/fact_check:")
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


def _confirmation(client: ApiClient, action: str) -> None:
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


# ------------------------------------------------------------------ tables


def _aliases(registry: Mapping[str, Any]) -> None:
    aliases = registry.get("aliases") or {}
    if not aliases:
        st.info("No alias is set: no version is served yet.")
        return
    columns = st.columns(max(len(aliases), 1))
    for column, (alias, version) in zip(columns, sorted(aliases.items()), strict=True):
        column.metric(f"`{alias}`", _v(version))


def _versions(registry: Mapping[str, Any]) -> list[str]:
    versions = registry.get("versions") or []
    if not versions:
        st.info("No version is registered yet. Train one with `make train`.")
        return []
    table = version_rows(versions)
    # Newest first; the headline metrics right after the identity columns.
    table = table.iloc[::-1]
    first = ["version", "aliases", "model_kind", *[m for m in _HEADLINE_METRICS if m in table.columns]]
    table = table[first + [c for c in table.columns if c not in first]]
    st.dataframe(table, hide_index=True)
    return [str(v) for v in table["version"]]


def newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda v: int(v) if v.isdigit() else 0, reverse=True)


@st.cache_data(ttl=3600, show_spinner=False)
def _report_files(base_url: str, path: str) -> tuple[dict[str, Any], str]:
    # a version's report is fixed at registration: fetched once, not at every rerun of the page
    client = ApiClient(base_url)
    try:
        return client.validation_report_data(path), client.validation_report(path)
    finally:
        client.close()


def _reports(registry: Mapping[str, Any]) -> dict[str, str]:
    """Version -> the API path of its validation report, for the versions that have one."""
    return {
        str(v.get("version")): str(v["validation_report"])
        for v in registry.get("versions") or []
        if v.get("validation_report")
    }


def _follow_the_alias(versions: Sequence[str], served: str) -> None:
    """The picker starts on the served version, and moves with the alias when it moves (a promotion or a
    rollback); a version a person picked stays picked while production stays where it is."""
    state = st.session_state
    if state.get(_REPORT_SERVED_KEY) != served or state.get(_REPORT_KEY) not in versions:
        state[_REPORT_KEY] = served if served in versions else versions[0]
        state[_REPORT_SERVED_KEY] = served


def _report(client: ApiClient, registry: Mapping[str, Any]) -> None:
    """A version's validation report (the one the gates and the move were judged on): shown and downloadable."""
    reports = _reports(registry)
    if not reports:
        st.info("No version has a validation report.")
        return
    versions = newest_first(reports)
    served = str((registry.get("aliases") or {}).get(_SERVING_ALIAS) or "")
    _follow_the_alias(versions, served)
    chosen = st.selectbox(
        "Validation report of version",
        versions,
        format_func=_v,
        key=_REPORT_KEY,
        help="Each move in the alias history names the version it moved to: its report is the one it was judged on.",
    )
    try:
        data, html = _report_files(client.base_url, reports[chosen])
    except ApiError as exc:
        show_api_error(exc)
        return
    st.download_button(
        f"Download the validation report of {_v(chosen)} (HTML)",
        data=html.encode(),
        file_name=f"validation-report-v{chosen}.html",
        mime="text/html",
        key="models.report_download",
    )
    with st.expander(f"Read the validation report of {_v(chosen)}"):
        show_report(data)  # from its data: no HTML from the registry on this page


def _history(registry: Mapping[str, Any]) -> None:
    history = registry.get("history") or []
    if not history:
        st.info("No alias has moved yet.")
        return
    reports = _reports(registry)
    frame = pd.DataFrame(history).iloc[::-1]
    frame.insert(0, "move", [f"{_v(e.get('from_version'))} → {_v(e.get('to_version'))}" for e in history[::-1]])
    frame.insert(
        1,
        "validation report",
        [
            f"report of {_v(e.get('to_version'))}" if str(e.get("to_version")) in reports else "none"
            for e in history[::-1]
        ],
    )
    frame = frame.drop(columns=[c for c in ("from_version", "to_version") if c in frame.columns])
    if "figures" in frame.columns:
        frame["figures"] = frame["figures"].map(
            lambda f: ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in (f or {}).items())
        )
    first = [c for c in ("at", "alias", "move", "action", "actor", "reason") if c in frame.columns]
    st.dataframe(
        frame[first + [c for c in frame.columns if c not in first]].astype(str),  # one type per column for Arrow
        hide_index=True,
        column_config={"reason": st.column_config.TextColumn("reason", width="large")},  # never cut off
    )


def _forms(client: ApiClient, versions: list[str], registry: Mapping[str, Any]) -> None:
    aliases = registry.get("aliases") or {}
    current_version = aliases.get(_SERVING_ALIAS)
    promote_col, rollback_col = st.columns(2)
    with promote_col, st.container(border=True, key="promote-form"):
        st.markdown("**Promote a version to production**")
        st.caption("The version must pass the promotion gates against the current champion, unless forced.")
        candidates = [v for v in versions if v != str(current_version)] or versions
        challenger = next((str(v) for a, v in aliases.items() if a != _SERVING_ALIAS), None)
        st.selectbox(
            "Version",
            candidates,
            index=candidates.index(challenger) if challenger in candidates else 0,
            key="promote.version",
            format_func=_v,
        )
        st.text_input("Reason", key="promote.reason", placeholder="e.g. monthly retrain, passes all gates")
        st.checkbox("Force (override failed gates; the reason is recorded)", key="promote.force")
        target = st.session_state.get("promote.version")
        move = f"{_SERVING_ALIAS}: {_v(current_version)} → {_v(target)}"
        left, right = st.columns(2)
        left.button("Check the gates (dry run)", on_click=_dry_run, args=(client,), key="promote.dry_run")
        right.button("Promote...", type="primary", on_click=_ask, args=("promote", move), key="promote.ask")
        _confirmation(client, "promote")
        _show_outcome("promote")
    with rollback_col, st.container(border=True, key="rollback-form"):
        st.markdown("**Roll production back**")
        st.caption("Moves the production alias back; no gates, but a reason is recorded.")
        last = last_move(registry.get("history") or [], _SERVING_ALIAS)
        undo_to = last.get("from_version") if last else None
        undo_label = f"Undo the last move (back to {_v(undo_to)})" if undo_to else "Undo the last move"
        st.selectbox(
            "To version",
            [_UNDO, *[v for v in versions if v != str(current_version)]],
            key="rollback.version",
            format_func=lambda v: undo_label if v == _UNDO else _v(v),
        )
        st.text_input("Reason", key="rollback.reason", placeholder="e.g. approval rate dropped after v5")
        choice = st.session_state.get("rollback.version")
        target = undo_to if choice == _UNDO else choice
        move = f"{_SERVING_ALIAS}: {_v(current_version)} → {_v(target) if target else 'the version before'}"
        st.button("Roll back...", on_click=_ask, args=("rollback", move), key="rollback.ask")
        _confirmation(client, "rollback")
        _show_outcome("rollback")


def render() -> None:
    st.title("Models")
    client = current().client
    try:
        registry = client.registry()
    except ApiError as exc:
        show_api_error(exc, what="read the model registry")
        return
    st.caption(f"Registered model **{registry.get('name')}**: the registry is the model inventory and its audit trail.")
    st.subheader("Aliases")
    _aliases(registry)
    numbers = [str(v.get("version")) for v in registry.get("versions") or []]
    versions = newest_first(numbers)
    if versions:
        st.subheader("Actions")
        _forms(client, versions, registry)
        st.subheader("Pending approvals")
        render_approvals(client)
    st.subheader("Versions")
    _versions(registry)
    st.subheader("Alias history")
    _history(registry)
    st.subheader("Validation reports")
    _report(client, registry)


render()
