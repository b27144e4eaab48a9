"""The Models page's pending approvals (Streamlit's AppTest against the real API): a request waits
there, and another person's approval on the page moves production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from credit_risk import registry
from tests.experiments.conftest import APPROVER_TOKEN, TwoModels
from tests.support.api import RunningApi, running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"


@pytest.fixture
def api(two: TwoModels, tmp_path: Path) -> Iterator[RunningApi]:
    env = {
        "CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN,
        "CREDIT_RISK_ADMIN_TOKEN_NAME": "alice",
        "CREDIT_RISK_APPROVER_TOKEN_NAME": "bob",
    }
    with running_api(two.store, tmp_path=tmp_path, env=env) as running:
        yield running


def test_a_pending_request_is_approved_on_the_models_page_and_production_moves(
    two: TwoModels, api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = httpx.post(
        f"{api.url}/v1/admin/promote",
        json={"version": two.challenger, "reason": "test: page approval", "force": True},
        headers=api.admin_headers(),
        timeout=300,
    )
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["approval"]["id"]
    monkeypatch.setenv("CREDIT_RISK_API_URL", api.url)
    monkeypatch.delenv("CREDIT_RISK_CONFIG_DIR", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = "\n".join(str(m.value) for m in at.markdown)
    assert f"Promote v{two.challenger}" in texts and "alice (admin)" in texts
    at.text_input(key=f"approval.{approval_id}.reason").input("validated independently")
    at.text_input(key="role.token").set_value(APPROVER_TOKEN)  # the sidebar's role token
    at.button(key=f"approval.{approval_id}.approve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Approved." in str(s.value) for s in at.success), [str(e.value) for e in at.error]
    name = two.store.config.model.registry.model_name
    assert registry.aliases_of(two.store.client, name)["production"] == two.challenger
