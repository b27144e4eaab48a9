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
_TOKEN_KEY = "role.token"  # the role token, entered once per browser session in the sidebar
_WHO_KEY = "role.who"  # (token, the service's answer to GET /v1/me or None when refused)


@dataclass(frozen=True)
class UIContext:
    """The API client and the UI's settings (from ``config/model_config.yaml`` ``ui:``)."""

    client: ApiClient
    batch_chunk_size: int
    max_body_bytes: int
    max_upload_rows: int
    # What the fairness figures count as favourable (training.yaml evaluation.favourable_outcome).
    favourable_outcome: str = "not_declined"
    outcomes_batch_size: int = 500  # rows per POST /v1/outcomes (outcomes.max_batch_size)


def install(context: UIContext) -> None:
    st.session_state[_SESSION_KEY] = context


def current() -> UIContext:
    """The context the entry point installed for this session."""
    return st.session_state[_SESSION_KEY]


def role_token() -> str:
    """The role token entered in the sidebar ("" when none): every page that needs a role uses it."""
    return str(st.session_state.get(_TOKEN_KEY) or "").strip()


def who() -> dict | None:
    """Whose the sidebar's token is (name, role, permissions), or None when none or refused."""
    token = role_token()
    if not token:
        return None
    known = st.session_state.get(_WHO_KEY)
    if known is None or known[0] != token:
        try:
            answer = current().client.whoami(token)
        except ApiError:
            answer = None
        known = st.session_state[_WHO_KEY] = (token, answer)
    return known[1]


def may(permission: str) -> bool:
    """The sidebar's token carries ``permission`` (admin, auditor, reviewer, approver)."""
    answer = who()
    return bool(answer) and permission in answer.get("permissions", [])


def role_sidebar() -> None:
    """The sidebar's role token field and whose it is: entered once, kept for this browser session only."""
    st.sidebar.text_input(
        "Your role token",
        type="password",
        key=_TOKEN_KEY,
        help="An admin, auditor, reviewer or approver token, given to you by your administrator. It stays "
        "in this browser session only; every action taken with it is recorded under its name.",
    )
    if not role_token():
        st.sidebar.caption("Enter your role token to look up decisions, review cases or change models.")
        return
    answer = who()
    if answer is None:
        st.sidebar.warning("The scoring service did not accept this token.", icon=":material/lock:")
    else:
        st.sidebar.caption(f"Signed in as **{answer['name']}** ({answer['role']}): {answer['description']}.")


def technical_details(exc: BaseException, *, hint: str | None = None) -> None:
    """What a developer needs (addresses, status codes, the error text), folded away from the message."""
    with st.expander("Technical details"):
        st.code(f"{type(exc).__name__}: {exc}", language=None, wrap_lines=True)
        if hint:
            st.caption(hint)


def show_api_error(exc: ApiError, *, what: str) -> None:
    """One clear message per failure kind, in a loan officer's words; ``what`` says what the page was doing.

    The technical account (address, HTTP status, the service's own text, how an operator fixes it)
    sits in an expander under the message.
    """
    if isinstance(exc, ApiUnavailableError):
        st.error(
            f"**The scoring service is not reachable right now**, so the UI cannot {what}. "
            "Try again in a moment; if it keeps failing, tell your system administrator.",
            icon=":material/cloud_off:",
        )
        hint = (
            f"The UI calls the API at {current().client.base_url}. Start it with `make up` (or "
            "`uvicorn serving.app:app`), or point the UI elsewhere with `CREDIT_RISK_API_URL`."
        )
    elif isinstance(exc, NoModelServedError):
        st.warning(
            f"**No model is available for scoring yet**, so the UI cannot {what}. "
            "Try again in a few minutes; if it lasts, tell the model owner.",
            icon=":material/hourglass_empty:",
        )
        hint = (
            "The API has no model in production (train and promote one: `make train`, `make promote`) "
            "or is still loading it."
        )
    elif isinstance(exc, UnauthorizedError):
        if not role_token():
            st.error(f"**A role token is needed** to {what}: enter yours in the sidebar.", icon=":material/lock:")
        elif who() is None:
            st.error(
                f"**The scoring service did not accept your role token**, so the UI cannot {what}: "
                "check the token in the sidebar.",
                icon=":material/lock:",
            )
        else:
            st.error(
                f"**Your role token may not {what}.** Ask your administrator for a token with that role.",
                icon=":material/lock:",
            )
        hint = "The service answers 404 to role-only calls when no token of that role is configured."
    elif isinstance(exc, RequestRejectedError):
        lines = "\n".join(f"- {problem}" for problem in exc.problems) or str(exc)
        st.error(f"**The scoring service refused this request**:\n\n{lines}", icon=":material/block:")
        hint = None
    elif isinstance(exc, NotFoundError):
        st.info(f"Nothing to show yet: {exc}")
        return
    else:
        st.error(
            f"**The scoring service failed** while the UI tried to {what}. Try again; if it keeps failing, "
            "tell your system administrator.",
            icon=":material/error:",
        )
        hint = None
    technical_details(exc, hint=hint)
