"""The Review queue page in Streamlit's AppTest against the real API: an override needs a reason."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.support.api import RunningApi
from tests.support.oversight import applicants_deciding
from tests.ui.conftest import served_schema

pytestmark = pytest.mark.integration

OpenApp = Callable[..., AppTest]


def _automation(api: RunningApi, mode: str) -> None:
    response = httpx.post(
        f"{api.url}/v1/admin/automation", json={"mode": mode, "reason": "ui test"}, headers=api.admin_headers()
    )
    assert response.status_code == 200, response.text


def _paused_approval_case(api: RunningApi) -> int:
    """A case the model would have approved: referred only because automation was paused."""
    with httpx.Client(base_url=api.url, timeout=30) as client:
        approved = applicants_deciding(client.post, served_schema(api).example_record(), "approve")[0]
        _automation(api, "paused")
        try:
            answer = client.post("/v1/predict", json=approved).json()
        finally:
            _automation(api, "on")  # the session's registry is shared
    assert answer["automation"]["model_decision"] == "approve", answer
    return int(answer["case"]["id"])


def test_an_override_without_a_reason_is_not_sent(api: RunningApi, open_app: OpenApp) -> None:
    case_id = _paused_approval_case(api)
    at = open_app(api.url, page="review")
    at.text_input(key="role.token").input(api.admin_token or "").run()
    at.selectbox(key="review.chosen").select(case_id).run()
    assert not at.exception, [e.value for e in at.exception]
    at.radio(key="review.decision").set_value("Decline")
    next(b for b in at.button if b.label == "Record the decision").click().run()
    assert any("needs a reason" in e.value for e in at.error), [e.value for e in at.error]
    case = httpx.get(f"{api.url}/v1/cases/{case_id}", headers=api.admin_headers()).json()
    assert case["state"] != "decided", "nothing was sent"
