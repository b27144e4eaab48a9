"""Entry point: ``streamlit run ui/app.py --server.port 8501``.

Reads the configuration once (``config/model_config.yaml`` ``ui:``, the API
address overridden by ``CREDIT_RISK_API_URL``), installs the API client for the
session and routes to the pages. The UI never imports the model or
MLflow: every number it shows comes from the scoring API.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root: add it
# so the pages can import `ui.*` and `credit_risk.*` from any working directory.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from credit_risk.config import ConfigError, Settings, load_project_config  # noqa: E402
from ui.api_client import ApiClient, ApiError  # noqa: E402
from ui.context import UIContext, install, role_sidebar  # noqa: E402
from ui.navigation import PAGES  # noqa: E402

_VIEWS = Path(__file__).resolve().parent / "views"


@st.cache_resource(show_spinner=False)
def build_context(config_dir: str, api_url_override: str | None) -> UIContext:
    """Read the config and build the client once per (config folder, API URL) for the process."""
    config = load_project_config(Path(config_dir))
    ui = config.model.ui
    client = ApiClient(
        api_url_override or ui.api_url,
        timeout=ui.timeout_seconds,
        admin_timeout=ui.admin_timeout_seconds,
    )
    # A chunk over the service's count or body-size limit would be refused whole: stay under both
    # (a tenth of the body limit is left for the HTTP client's own encoding).
    serving = config.model.serving
    return UIContext(
        client=client,
        batch_chunk_size=min(ui.batch_chunk_size, serving.max_batch_size),
        max_body_bytes=serving.max_body_bytes * 9 // 10,
        max_upload_rows=ui.max_upload_rows,
        favourable_outcome=str(getattr(config.training.evaluation, "favourable_outcome", "not_declined")),
        outcomes_batch_size=config.model.outcomes.max_batch_size,
    )


def _automation_notice(context: UIContext) -> None:
    """On every page: say so when automation is paused (every application goes to a reviewer)."""
    try:
        automation = context.client.model_info().get("automation") or {}
    except ApiError:
        return  # the page itself says when the service is away
    if automation.get("mode") == "paused":
        st.sidebar.warning(
            f"**Automation is paused**: every application goes to a reviewer. Paused by {automation.get('actor')} "
            f"at {str(automation.get('since', '')).replace('T', ' ')[:16]}: {automation.get('reason')}",
            icon=":material/pause_circle:",
        )


def main() -> None:
    st.set_page_config(page_title="Credit risk", page_icon=":material/account_balance:", layout="wide")
    settings = Settings()
    try:
        context = build_context(str(settings.config_dir), settings.api_url)
    except ConfigError as exc:
        st.error(f"**The UI's configuration is invalid.** {exc}")
        st.stop()
    install(context)
    pages = [st.Page(_VIEWS / p.view, title=p.title, icon=p.icon, default=p.default) for p in PAGES]
    page = st.navigation(pages)
    role_sidebar()
    st.sidebar.caption(f"Scoring API: `{context.client.base_url}`")
    _automation_notice(context)
    page.run()


if __name__ == "__main__":
    main()
