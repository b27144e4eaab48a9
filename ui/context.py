"""What every page needs, built once by the entry point and handed to the pages.

``ui/app.py`` reads the configuration, builds a :class:`UIContext` and puts it
in the session; page scripts take it with :func:`current`. Error display lives
here too, so every page turns an API failure into the same kind of message.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui.api_client import (
    ApiClient,
    ApiError,
    ApiUnavailableError,
    NoModelServedError,
    NotFoundError,
    RequestRejectedError,
    UnauthorizedError,
)

_SESSION_KEY = "credit_risk_ui_context"


@dataclass(frozen=True)
class UIContext:
    """The API client and the UI's settings (from ``config/model_config.yaml`` ``ui:``)."""

    client: ApiClient
    batch_chunk_size: int
    max_body_bytes: int
    max_upload_rows: int


def install(context: UIContext) -> None:
    st.session_state[_SESSION_KEY] = context


def current() -> UIContext:
    """The context the entry point installed for this session."""
    return st.session_state[_SESSION_KEY]


def show_api_error(exc: ApiError, *, what: str) -> None:
    """One clear message per failure kind; ``what`` says what the page was trying to do."""
    if isinstance(exc, ApiUnavailableError):
        st.error(
            f"**The scoring service is not reachable**, so the UI cannot {what}.\n\n{exc}\n\n"
            "Start it with `make up` (or `uvicorn serving.app:app`) or set `CREDIT_RISK_API_URL`.",
            icon=":material/cloud_off:",
        )
    elif isinstance(exc, NoModelServedError):
        st.warning(
            f"**No model is in production**, so the UI cannot {what}.\n\n{exc}\n\n"
            "Train and promote one (`make train`, `make promote`), or wait for the service to finish loading.",
            icon=":material/hourglass_empty:",
        )
    elif isinstance(exc, UnauthorizedError):
        st.error(f"**Not allowed.** {exc}", icon=":material/lock:")
    elif isinstance(exc, RequestRejectedError):
        lines = "\n".join(f"- {problem}" for problem in exc.problems) or str(exc)
        st.error(f"**The service refused the request** (HTTP {exc.status}):\n\n{lines}", icon=":material/block:")
    elif isinstance(exc, NotFoundError):
        st.info(f"Nothing to show yet: {exc}")
    else:
        st.error(f"**The scoring service failed** while the UI tried to {what}.\n\n{exc}", icon=":material/error:")
