"""Models: the registry's versions and aliases, the alias history, promote and roll back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.context import current, show_api_error
from ui.present import version_rows

_OUTCOME_KEY = "models.outcome"
_PREVIOUS = "(the version that held it before)"
_HEADLINE_METRICS = ("roc_auc_cv_mean", "roc_auc", "gini", "ks", "brier", "expected_cost")


def _act(client: ApiClient, action: str) -> None:
    """Form callback: run the admin call before the page re-renders, so the tables show its effect."""
    token = st.session_state.get(f"{action}.token") or ""
    reason = (st.session_state.get(f"{action}.reason") or "").strip()
    version = st.session_state.get(f"{action}.version")
    if not token or not reason:
        st.session_state[_OUTCOME_KEY] = (action, "missing", "Give the admin token and a reason.")
        return
    try:
        if action == "promote":
            answer = client.promote(
                token=token, version=version, reason=reason, force=bool(st.session_state.get("promote.force"))
            )
        else:
            answer = client.rollback(token=token, version=None if version == _PREVIOUS else version, reason=reason)
    except RequestRejectedError as exc:
        st.session_state[_OUTCOME_KEY] = (action, "refused", exc)
    except ApiError as exc:
        st.session_state[_OUTCOME_KEY] = (action, "error", exc)
    else:
        st.session_state[_OUTCOME_KEY] = (action, "done", answer)


def _show_outcome() -> None:
    outcome = st.session_state.get(_OUTCOME_KEY)
    if outcome is None:
        return
    action, kind, payload = outcome
    verb = "Promotion" if action == "promote" else "Rollback"
    if kind == "done":
        st.success(f"**{verb} done.** {_summary(payload)}", icon=":material/check_circle:")
    elif kind == "missing":
        st.warning(f"**{verb} not sent.** {payload}")
    elif kind == "refused":
        gates = "\n".join(f"- {p.message}" for p in payload.problems) or f"- {payload}"
        st.error(f"**{verb} refused** (HTTP {payload.status}). Failed checks:\n\n{gates}", icon=":material/gpp_bad:")
    else:
        show_api_error(payload, what=action)


def _summary(answer: Any) -> str:
    """'production: v1 -> v2' from the alias event the service answers with."""
    event = answer.get("event", answer) if isinstance(answer, Mapping) else {}
    if not isinstance(event, Mapping) or "to_version" not in event:
        return ""
    return f"`{event.get('alias')}`: v{event.get('from_version') or '-'} -> v{event.get('to_version')}."


def _aliases(registry: Mapping[str, Any]) -> None:
    aliases = registry.get("aliases") or {}
    if not aliases:
        st.info("No alias is set: no version is served yet.")
        return
    columns = st.columns(max(len(aliases), 1))
    for column, (alias, version) in zip(columns, sorted(aliases.items()), strict=True):
        column.metric(f"`{alias}`", f"v{version}")


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


def _history(registry: Mapping[str, Any]) -> None:
    history = registry.get("history") or []
    if not history:
        st.info("No alias has moved yet.")
        return
    frame = pd.DataFrame(history).iloc[::-1]
    if "figures" in frame.columns:
        frame["figures"] = frame["figures"].map(lambda f: ", ".join(f"{k}={v}" for k, v in (f or {}).items()))
    st.dataframe(frame, hide_index=True)


def _forms(client: ApiClient, versions: list[str], aliases: Mapping[str, str]) -> None:
    promote_col, rollback_col = st.columns(2)
    with promote_col, st.form("promote"):
        st.markdown("**Promote a version to production**")
        st.caption("The version must pass the promotion gates against the current champion, unless forced.")
        challenger = next((str(v) for a, v in aliases.items() if a != "production"), None)
        st.selectbox(
            "Version",
            versions,
            index=versions.index(challenger) if challenger in versions else 0,
            key="promote.version",
        )
        st.text_input("Reason", key="promote.reason", placeholder="e.g. monthly retrain, passes all gates")
        st.checkbox("Force (override failed gates; the reason is recorded)", key="promote.force")
        st.text_input("Admin token", type="password", key="promote.token")
        st.form_submit_button("Promote", type="primary", on_click=_act, args=(client, "promote"))
    with rollback_col, st.form("rollback"):
        st.markdown("**Roll production back**")
        st.caption("Moves the production alias back; no gates, but a reason is recorded.")
        st.selectbox("To version", [_PREVIOUS, *versions], key="rollback.version")
        st.text_input("Reason", key="rollback.reason", placeholder="e.g. approval rate dropped after v5")
        st.text_input("Admin token", type="password", key="rollback.token")
        st.form_submit_button("Roll back", on_click=_act, args=(client, "rollback"))


def render() -> None:
    st.title("Models")
    client = current().client
    _show_outcome()
    try:
        registry = client.registry()
    except ApiError as exc:
        show_api_error(exc, what="read the model registry")
        return
    st.caption(f"Registered model **{registry.get('name')}**: the registry is the model inventory and its audit trail.")
    st.subheader("Aliases")
    _aliases(registry)
    st.subheader("Versions")
    versions = _versions(registry)
    st.subheader("Alias history")
    _history(registry)
    if versions:
        st.subheader("Actions")
        _forms(client, versions, registry.get("aliases") or {})


render()
