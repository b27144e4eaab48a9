"""Refreshing a page's figures from the page: the job the command runs, started by the API and followed
here until it ends (Monitoring and Performance; admins only)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import streamlit as st

from ui.api_client import ApiError
from ui.context import current, may, role_token, show_api_error

_WAIT_SECONDS = 300


def refresh_panel(job: str, *, what: str, params: Mapping[str, Any] | None = None, key: str) -> None:
    """A "Refresh now" button for admins; the run's progress and its MLflow run under it."""
    done = st.session_state.pop(f"{key}.done", None)
    if done:
        st.success(done, icon=":material/check_circle:")
    if not may("admin"):
        st.caption(f"An admin can refresh {what} from this page: enter an admin token in the sidebar.")
        return
    if not st.button("Refresh now", key=f"{key}.refresh", icon=":material/refresh:"):
        return
    client = current().client
    try:
        run = client.start_job(token=role_token(), job=job, params=params or {})
    except ApiError as exc:
        show_api_error(exc, what=f"refresh {what}")
        return
    with st.status(f"Refreshing {what}...", expanded=True) as status:
        deadline = time.monotonic() + _WAIT_SECONDS
        shown = 0
        while run.get("state") == "running" and time.monotonic() < deadline:
            time.sleep(1.0)
            try:
                run = client.job(token=role_token(), run_id=run["id"])
            except ApiError as exc:
                show_api_error(exc, what=f"follow the refresh of {what}")
                return
            lines = run.get("output") or []
            for line in lines[shown:]:
                if not line.startswith(("20", " ")) or "finished" in line:  # the job's sentences, not its log lines
                    st.write(line)
            shown = len(lines)
        if run.get("state") == "running":
            status.update(label=f"Still refreshing {what}: look again in a minute.", state="running")
            return
        if run.get("state") != "finished":
            status.update(label=f"The refresh of {what} failed.", state="error")
            st.code("\n".join(run.get("output") or []), language=None)
            return
        mlflow_run = run.get("mlflow_run_id")
        label = f"Refreshed {what}" + (f": MLflow run {mlflow_run}" if mlflow_run else "") + "."
        status.update(label=label, state="complete")
    st.session_state[f"{key}.done"] = label
    st.rerun()
