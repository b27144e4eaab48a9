"""Human oversight through the real service: referrals open cases, reviewers claim and decide them,
the final decision shows in the decision record and its notice, contests, the stop switch, /metrics.

In-process (TestClient, lifespan included) on the session's real model, a real prediction log and
the default SQLite case store beside it. Declines open cases too here (``review.decisions``), so
overrides of the model can be tested on the session's model as it decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credit_risk.cases import CaseStore
from credit_risk.config import ProjectConfig
from tests.conftest import TrainedModel
from tests.support.audit import ADMIN, AUDITOR, REVIEWER, audit_client, wait_logged
from tests.support.oversight import applicants_deciding, bearer, queue_ids

pytestmark = pytest.mark.code


def with_review(config: ProjectConfig, **changes: Any) -> ProjectConfig:
    review = config.model.review.model_copy(update=changes)
    return config.model_copy(update={"model": config.model.model_copy(update={"review": review})})


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oversight") / "predictions"


@pytest.fixture(scope="module")
def service(trained: TrainedModel, log_dir: Path) -> Iterator[TestClient]:
    config = with_review(trained.store.config, decisions=("review", "decline"))
    with audit_client(trained.store, log_dir, reviewer=REVIEWER, config=config) as client:
        yield client


@pytest.fixture(scope="module")
def referred(service: TestClient, applicant: dict[str, Any]) -> dict[str, Any]:
    return applicants_deciding(service.post, applicant, "review")[0]


@pytest.fixture(scope="module")
def declined(service: TestClient, applicant: dict[str, Any]) -> dict[str, Any]:
    return applicants_deciding(service.post, applicant, "decline")[0]


def score(service: TestClient, applicant: dict[str, Any], request_id: str) -> dict[str, Any]:
    response = service.post("/v1/predict", json=applicant, headers={"X-Request-ID": request_id})
    assert response.status_code == 200, response.text
    return response.json()


def case_of(service: TestClient, applicant: dict[str, Any], request_id: str) -> int:
    answer = score(service, applicant, request_id)
    assert answer.get("case") is not None, answer
    return int(answer["case"]["id"])


def act(service: TestClient, case_id: int, action: str, token: str = REVIEWER, **body: Any) -> Any:
    return service.post(f"/v1/cases/{case_id}/{action}", json=body or None, headers=bearer(token))


# ------------------------------------------------------------------ cases open


def test_a_referral_opens_a_case_named_in_its_answer_and_queued(service: TestClient, referred: dict) -> None:
    answer = score(service, referred, "oversight-referral-1")
    assert answer["decision"] == "review"
    case_id = answer["case"]["id"]
    assert answer["case"]["state"] == "open"
    assert case_id in queue_ids(service, REVIEWER)
    case = service.get(f"/v1/cases/{case_id}", headers=bearer(REVIEWER)).json()
    assert case["request_id"] == "oversight-referral-1"
    assert (case["probability_of_default"], case["score"], case["risk_band"]) == (
        answer["probability_of_default"],
        answer["score"],
        answer["risk_band"],
    )
    assert case["reasons"] == [reason["code"] for reason in answer["reasons"]]
    assert case["history"][0]["action"] == "opened"


def test_an_approval_opens_no_case(service: TestClient, applicant: dict[str, Any]) -> None:
    approved = applicants_deciding(service.post, applicant, "approve")[0]
    answer = score(service, approved, "oversight-approved-1")
    assert "case" not in answer


def test_the_queue_is_ordered_by_due_time_and_filters_by_band(service: TestClient, referred: dict) -> None:
    for i in range(3):
        case_of(service, referred, f"oversight-order-{i}")
    cases = service.get("/v1/cases", params={"page_size": 500}, headers=bearer(REVIEWER)).json()
    due = [case["due_at"] for case in cases["cases"]]
    assert due == sorted(due)
    band = cases["cases"][0]["risk_band"]
    banded = service.get("/v1/cases", params={"band": band}, headers=bearer(REVIEWER)).json()
    assert banded["total"] >= 1 and {case["risk_band"] for case in banded["cases"]} == {band}


def test_a_case_shows_the_application_in_the_schemas_words(service: TestClient, referred: dict) -> None:
    case_id = case_of(service, referred, "oversight-labels-1")
    wait_logged(service, "oversight-labels-1")
    case = service.get(f"/v1/cases/{case_id}", headers=bearer(REVIEWER)).json()
    application = case["application"]
    assert (
        application["inputs"]["status_of_existing_checking_account"] == referred["status_of_existing_checking_account"]
    )
    assert all(reason["label"] and reason["label"] != reason["code"] for reason in application["reasons"])


# ------------------------------------------------------------------ claim and decide


def test_a_case_claimed_by_one_reviewer_is_refused_to_another_with_409(service: TestClient, referred: dict) -> None:
    case_id = case_of(service, referred, "oversight-claim-1")
    assert act(service, case_id, "claim").status_code == 200
    taken = act(service, case_id, "claim", ADMIN)  # an admin may review too: a second reviewer
    assert taken.status_code == 409, taken.text
    assert "review-carol" in taken.json()["detail"]
    refused = act(service, case_id, "decide", ADMIN, decision="approve", reason_code="verified_income")
    assert refused.status_code == 409
    assert service.get(f"/v1/cases/{case_id}", headers=bearer(REVIEWER)).json()["state"] == "claimed"


def test_a_released_case_can_be_claimed_by_another_reviewer(service: TestClient, referred: dict) -> None:
    case_id = case_of(service, referred, "oversight-release-1")
    assert act(service, case_id, "claim").status_code == 200
    assert act(service, case_id, "release").json()["state"] == "open"
    assert act(service, case_id, "claim", ADMIN).json()["claimed_by"] == "ops-alice (admin)"


def test_an_unknown_reason_code_is_422_naming_the_allowed_codes_and_changes_nothing(
    service: TestClient, referred: dict
) -> None:
    case_id = case_of(service, referred, "oversight-code-1")
    act(service, case_id, "claim")
    refused = act(service, case_id, "decide", decision="approve", reason_code="because")
    assert refused.status_code == 422
    problem = refused.json()["detail"][0]
    assert problem["field"] == "reason_code" and "verified_income" in problem["msg"]
    case = service.get(f"/v1/cases/{case_id}", headers=bearer(REVIEWER)).json()
    assert case["state"] == "claimed" and case["final_decision"] is None


def test_an_override_of_the_model_without_a_reason_code_is_422(service: TestClient, declined: dict) -> None:
    case_id = case_of(service, declined, "oversight-override-1")
    refused = act(service, case_id, "decide", decision="approve")
    assert refused.status_code == 422
    assert "reason code" in refused.json()["detail"][0]["msg"]
    assert service.get(f"/v1/cases/{case_id}", headers=bearer(REVIEWER)).json()["state"] == "open"


def test_a_decided_case_refuses_another_decision_with_409(service: TestClient, referred: dict) -> None:
    case_id = case_of(service, referred, "oversight-twice-1")
    assert act(service, case_id, "decide", decision="approve", reason_code="verified_income").status_code == 200
    again = act(service, case_id, "decide", decision="decline", reason_code="documents_missing")
    assert again.status_code == 409
    assert "already decided" in again.json()["detail"]


def test_an_unknown_case_is_404(service: TestClient) -> None:
    assert service.get("/v1/cases/999999", headers=bearer(REVIEWER)).status_code == 404
    assert act(service, 999999, "claim").status_code == 404


def test_an_auditor_may_not_work_cases(service: TestClient) -> None:
    assert service.get("/v1/cases", headers=bearer(AUDITOR)).status_code == 403
    assert service.get("/v1/cases").status_code == 401


def test_every_case_action_is_in_the_access_log_with_the_tokens_name(
    service: TestClient, referred: dict, log_dir: Path
) -> None:
    case_id = case_of(service, referred, "oversight-access-1")
    act(service, case_id, "claim")
    act(service, case_id, "decide", decision="decline", reason_code="documents_missing", note="no payslips")
    lines = [json.loads(line) for line in (log_dir.parent / "audit" / "access.jsonl").read_text().splitlines()]
    mine = [(e["actor"], e["action"], e["status"]) for e in lines if e.get("case_id") == case_id]
    assert mine == [("review-carol", "case_claim", 200), ("review-carol", "case_decide", 200)]


# ------------------------------------------------------------------ the final decision everywhere


def test_a_human_decline_is_the_final_decision_and_gets_a_notice_with_the_reviewers_reason(
    service: TestClient, referred: dict
) -> None:
    case_id = case_of(service, referred, "oversight-final-decline")
    act(service, case_id, "decide", decision="decline", reason_code="documents_missing", note="no payslips")
    record = wait_logged(service, "oversight-final-decline")
    assert record["decision"] == "review", "the logged decision never changes"
    assert record["final_decision"]["decision"] == "decline"
    assert record["final_decision"]["by"] == "reviewer"
    assert [event["action"] for event in record["cases"][0]["history"]] == ["opened", "decided"]
    reasons = [reason["code"] for reason in record["notice"]["principal_reasons"]]
    assert reasons[0] == "documents_missing"
    assert record["notice"]["decision"] == "decline"


def test_a_human_approval_of_a_model_decline_withdraws_the_notice(service: TestClient, declined: dict) -> None:
    case_id = case_of(service, declined, "oversight-final-approve")
    decided = act(service, case_id, "decide", decision="approve", reason_code="verified_income")
    assert decided.json()["override"] is True
    record = wait_logged(service, "oversight-final-approve")
    assert record["decision"] == "decline"
    assert record["final_decision"]["decision"] == "approve"
    assert record["notice"] is None and record["notice_withdrawn"] is True
    pdf = service.get("/v1/decisions/oversight-final-approve/notice.pdf", headers=bearer(AUDITOR))
    assert pdf.status_code == 404


def test_replay_reproduces_the_models_part_of_a_decided_case(service: TestClient, declined: dict) -> None:
    case_id = case_of(service, declined, "oversight-replay-1")
    act(service, case_id, "decide", decision="approve", reason_code="policy_exception")
    wait_logged(service, "oversight-replay-1")
    replayed = service.post("/v1/decisions/oversight-replay-1/replay", headers=bearer(AUDITOR)).json()
    assert replayed["status"] == "identical", replayed


# ------------------------------------------------------------------ contests


def test_a_contest_opens_a_linked_case_and_the_original_record_never_changes(
    service: TestClient, declined: dict
) -> None:
    score(service, declined, "oversight-contest-1")
    before = wait_logged(service, "oversight-contest-1")
    contested = service.post(
        "/v1/decisions/oversight-contest-1/contest",
        json={"reason": "my income has doubled since", "note": "by phone"},
        headers=bearer(REVIEWER),
    )
    assert contested.status_code == 201, contested.text
    contest = contested.json()
    assert (contest["kind"], contest["request_id"], contest["state"]) == ("contest", "oversight-contest-1", "open")
    act(service, contest["id"], "decide", decision="approve", reason_code="verified_income")
    after = wait_logged(service, "oversight-contest-1")
    assert {k: after[k] for k in ("decision", "probability_of_default", "reasons", "inputs")} == {
        k: before[k] for k in ("decision", "probability_of_default", "reasons", "inputs")
    }
    assert after["final_decision"]["decision"] == "approve" and after["final_decision"]["kind"] == "contest"
    again = service.post(
        "/v1/decisions/oversight-contest-1/contest", json={"reason": "again"}, headers=bearer(REVIEWER)
    )
    assert again.status_code == 409


def test_contesting_an_unknown_decision_is_404(service: TestClient) -> None:
    response = service.post("/v1/decisions/no-such-id/contest", json={"reason": "x"}, headers=bearer(REVIEWER))
    assert response.status_code == 404


# ------------------------------------------------------------------ the stop switch and /metrics


def test_while_paused_every_decision_is_referred_with_the_models_recommendation(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    approved = applicants_deciding(service.post, applicant, "approve")[0]
    paused = service.post(
        "/v1/admin/automation", json={"mode": "paused", "reason": "drift alert"}, headers=bearer(ADMIN)
    )
    assert paused.status_code == 200, paused.text
    try:
        model = service.get("/v1/model").json()
        assert model["automation"]["mode"] == "paused" and model["automation"]["actor"] == "ops-alice (admin)"
        answer = score(service, approved, "oversight-paused-1")
        assert answer["decision"] == "review"
        assert answer["automation"] == {"mode": "paused", "model_decision": "approve"}
        assert answer["case"] is not None
        record = wait_logged(service, "oversight-paused-1")
        assert record["model_decision"] == "approve"
        replayed = service.post("/v1/decisions/oversight-paused-1/replay", headers=bearer(AUDITOR)).json()
        assert replayed["status"] == "identical", replayed
    finally:
        resumed = service.post("/v1/admin/automation", json={"mode": "on", "reason": "resolved"}, headers=bearer(ADMIN))
        assert resumed.status_code == 200
    assert score(service, approved, "oversight-resumed-1")["decision"] == "approve"


def test_a_reviewer_may_not_pause_automation(service: TestClient) -> None:
    response = service.post("/v1/admin/automation", json={"mode": "paused", "reason": "x"}, headers=bearer(REVIEWER))
    assert response.status_code == 403


def test_metrics_count_open_and_overdue_cases(service: TestClient, referred: dict) -> None:
    case_of(service, referred, "oversight-metrics-1")
    text = service.get("/metrics").text
    values = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("credit_risk_case")
    }
    assert values["credit_risk_cases_open"] >= 1
    assert values["credit_risk_cases_overdue"] == 0
    assert values["credit_risk_cases_oldest_age_seconds"] >= 0


def test_cases_missing_from_the_store_are_reconciled_from_the_log_exactly_once(
    service: TestClient, referred: dict
) -> None:
    store = service.app.state.runtime.cases
    case_id = case_of(service, referred, "oversight-reconcile-1")
    wait_logged(service, "oversight-reconcile-1")
    with store.engine.begin() as connection:  # as if the service died between the answer and the insert
        connection.exec_driver_sql("delete from case_events where case_id = ?", (case_id,))
        connection.exec_driver_sql("delete from cases where id = ?", (case_id,))
        connection.exec_driver_sql("delete from case_log_files")
    store.reconcile()
    store.reconcile()
    found = store.for_decision("oversight-reconcile-1")
    assert len(found) == 1 and found[0]["history"][0]["source"] == "log"


def test_a_case_store_that_is_away_answers_503_and_referrals_still_get_their_decision(
    service: TestClient, referred: dict, tmp_path: Path
) -> None:
    runtime = service.app.state.runtime
    working = runtime.cases
    runtime.cases = CaseStore(f"sqlite:///{tmp_path / 'never-migrated.sqlite'}", working.config)  # no tables
    try:
        assert service.get("/v1/cases", headers=bearer(REVIEWER)).status_code == 503
        answer = score(service, referred, "oversight-store-away-1")
        assert answer["decision"] == "review" and "case" not in answer
        logged = service.get("/v1/decisions/oversight-store-away-1", headers=bearer(AUDITOR))
        assert logged.status_code in (404, 503), logged.text  # 404 until the log's file is written
    finally:
        runtime.cases = working
    working.reconcile()
    wait_logged(service, "oversight-store-away-1")
    working.reconcile()
    assert len(working.for_decision("oversight-store-away-1")) == 1, "the log's reconciliation opened its case"
