"""Models: the registry's versions and aliases, the alias history, promote, approve and roll back.

Every move of production goes through a confirmation that names it
("production: v1 → v2"); a dry run shows the promotion gates without moving
anything; the outcome of an action appears right under the button pressed.
Rollback without a version undoes the last move of the serving alias.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiClient, ApiError
from ui.approvals import render_approvals
from ui.context import current, show_api_error
from ui.model_actions import UNDO, ask, confirmation, dry_run, show_outcome, v_label
from ui.present import version_rows
from ui.report_view import show_report

_HEADLINE_METRICS = ("roc_auc_cv_mean", "roc_auc", "gini", "ks", "brier", "expected_cost")
_SERVING_ALIAS = "production"
_REPORT_KEY = "models.report_version"  # the report picker's choice
_REPORT_SERVED_KEY = "models.report_served"  # the served version when the picker was last set to it


def last_move(history: Sequence[Mapping[str, Any]], alias: str) -> Mapping[str, Any] | None:
    """The newest event that moved ``alias`` (the history is oldest first)."""
    moves = [e for e in history if e.get("alias") == alias]
    return max(moves, key=lambda e: (e.get("sequence") or 0, str(e.get("at")))) if moves else None


# ------------------------------------------------------------------ tables


def _aliases(registry: Mapping[str, Any]) -> None:
    aliases = registry.get("aliases") or {}
    if not aliases:
        st.info("No alias is set: no version is served yet.")
        return
    columns = st.columns(max(len(aliases), 1))
    for column, (alias, version) in zip(columns, sorted(aliases.items()), strict=True):
        column.metric(f"`{alias}`", v_label(version))


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
        format_func=v_label,
        key=_REPORT_KEY,
        help="Each move in the alias history names the version it moved to: its report is the one it was judged on.",
    )
    try:
        data, html = _report_files(client.base_url, reports[chosen])
    except ApiError as exc:
        show_api_error(exc)
        return
    st.download_button(
        f"Download the validation report of {v_label(chosen)} (HTML)",
        data=html.encode(),
        file_name=f"validation-report-v{chosen}.html",
        mime="text/html",
        key="models.report_download",
    )
    with st.expander(f"Read the validation report of {v_label(chosen)}"):
        show_report(data)  # from its data: no HTML from the registry on this page


def _history(registry: Mapping[str, Any]) -> None:
    history = registry.get("history") or []
    if not history:
        st.info("No alias has moved yet.")
        return
    reports = _reports(registry)
    frame = pd.DataFrame(history).iloc[::-1]
    frame.insert(
        0,
        "move",
        [f"{v_label(e.get('from_version'))} → {v_label(e.get('to_version'))}" for e in history[::-1]],
    )
    frame.insert(
        1,
        "validation report",
        [
            f"report of {v_label(e.get('to_version'))}" if str(e.get("to_version")) in reports else "none"
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
            format_func=v_label,
        )
        st.text_input("Reason", key="promote.reason", placeholder="e.g. monthly retrain, passes all gates")
        st.checkbox("Force (override failed gates; the reason is recorded)", key="promote.force")
        target = st.session_state.get("promote.version")
        move = f"{_SERVING_ALIAS}: {v_label(current_version)} → {v_label(target)}"
        left, right = st.columns(2)
        left.button("Check the gates (dry run)", on_click=dry_run, args=(client,), key="promote.dry_run")
        right.button("Promote...", type="primary", on_click=ask, args=("promote", move), key="promote.ask")
        confirmation(client, "promote")
        show_outcome("promote")
    with rollback_col, st.container(border=True, key="rollback-form"):
        st.markdown("**Roll production back**")
        st.caption("Moves the production alias back; no gates, but a reason is recorded.")
        last = last_move(registry.get("history") or [], _SERVING_ALIAS)
        undo_to = last.get("from_version") if last else None
        undo_label = f"Undo the last move (back to {v_label(undo_to)})" if undo_to else "Undo the last move"
        st.selectbox(
            "To version",
            [UNDO, *[v for v in versions if v != str(current_version)]],
            key="rollback.version",
            format_func=lambda v: undo_label if v == UNDO else v_label(v),
        )
        st.text_input("Reason", key="rollback.reason", placeholder="e.g. approval rate dropped after v5")
        choice = st.session_state.get("rollback.version")
        target = undo_to if choice == UNDO else choice
        move = f"{_SERVING_ALIAS}: {v_label(current_version)} → {v_label(target) if target else 'the version before'}"
        st.button("Roll back...", on_click=ask, args=("rollback", move), key="rollback.ask")
        confirmation(client, "rollback")
        show_outcome("rollback")


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
