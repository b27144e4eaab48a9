"""The Decisions page in Streamlit's AppTest against the real API: look up, reasons, replay, notice."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.support.api import RunningApi
from tests.ui.conftest import served_schema

pytestmark = pytest.mark.integration

OpenApp = Callable[..., AppTest]


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


def _declined(api: RunningApi, request_id: str) -> dict:
    applicant = {
        **served_schema(api).example_record(),
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }
    answer = httpx.post(f"{api.url}/v1/predict", json=applicant, headers={"X-Request-ID": request_id}).json()
    deadline = time.monotonic() + 20
    while httpx.get(f"{api.url}/v1/decisions/{request_id}", headers=api.admin_headers()).status_code != 200:
        assert time.monotonic() < deadline, "the decision never reached the log"
        time.sleep(0.2)
    return answer


def test_a_decision_is_looked_up_replayed_and_its_notice_prepared(api: RunningApi, open_app: OpenApp) -> None:
    answer = _declined(api, "ui-declined-1")
    at = open_app(api.url, page="decisions")
    at.text_input(key="role.token").input(api.admin_token or "")
    at.text_input(key="decisions.request_id").input("ui-declined-1")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.metric][:1] == [
        {"approve": "Approved", "review": "Referred", "decline": "Declined"}[answer["decision"]]
    ], "one word per decision, as on the Score page"
    texts = _texts(at)
    assert f"version {answer['model']['version']}" in texts
    assert "Adverse-action notice" in texts
    replay = next(b for b in at.button if b.label == "Replay this decision")
    replay.click().run()
    assert any("Identical" in s.value for s in at.success), _texts(at)
    next(b for b in at.button if b.label.startswith("Prepare the notice")).click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


def test_a_wrong_token_is_refused_clearly(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="decisions")
    at.text_input(key="role.token").input("not-a-token-0123456789")
    at.text_input(key="decisions.request_id").input("anything")
    at.button[0].click().run()
    assert not at.exception
    assert any("did not accept your token" in e.value for e in at.error), _texts(at)


def test_without_a_token_the_page_says_a_token_is_needed(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="decisions")
    assert any("auditor (or admin) token in the sidebar" in i.value for i in at.info), _texts(at)
    at.text_input(key="decisions.request_id").input("anything")
    at.button[0].click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("A token is needed" in e for e in errors), errors
    assert not any("Illegal header" in e or "cannot be reached" in e for e in errors), errors


def test_an_unknown_id_says_it_is_not_found_without_a_note_on_role_tokens(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="decisions")
    at.text_input(key="role.token").input(api.admin_token or "")
    at.text_input(key="decisions.request_id").input("no-such-decision-1")
    at.button[0].click().run()
    errors = [e.value for e in at.error]
    assert errors == ["No decision was found with the request id 'no-such-decision-1'."], errors
