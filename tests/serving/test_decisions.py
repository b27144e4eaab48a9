"""Decision routes against the real service, its real prediction log and the session's real model."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from bench.lookup_bench import write_synthetic_log
from credit_risk.audit.access import AccessLog
from serving.api.decision_schemas import DecisionOut, DecisionPage, ReplayOut
from tests.conftest import TrainedModel
from tests.support.audit import ADMIN, AUDITOR, audit_client, bearer, wait_logged

pytestmark = pytest.mark.code

DECISION_ROUTES = [
    ("GET", "/v1/decisions/some-id"),
    ("GET", "/v1/decisions?applicant_id=a-1"),
    ("POST", "/v1/decisions/some-id/replay"),
    ("GET", "/v1/decisions/some-id/notice.pdf"),
]


@pytest.fixture(scope="module")
def audit_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit-log") / "predictions"


@pytest.fixture(scope="module")
def service(trained: TrainedModel, audit_log_dir: Path) -> Iterator[TestClient]:
    with audit_client(trained.store, audit_log_dir) as client:
        yield client


def risky(applicant: dict[str, Any]) -> dict[str, Any]:
    """An applicant the model declines: overdrawn, long loan, large amount, poor history."""
    return {
        **applicant,
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }


def test_a_decision_is_found_by_its_request_id_as_it_was_answered(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    answered = service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "find-me-1"}).json()
    body = DecisionOut.model_validate(wait_logged(service, "find-me-1"))
    assert body.probability_of_default == answered["probability_of_default"]
    assert (body.score, body.risk_band, body.decision) == (
        answered["score"],
        answered["risk_band"],
        answered["decision"],
    )
    assert [r.code for r in body.reasons] == [r["code"] for r in answered["reasons"]]
    assert body.model["version"] == answered["model"]["version"]
    assert body.decision_policy_version == answered["decision_policy_version"]
    assert body.inputs["duration_in_month"] == applicant["duration_in_month"]


def test_an_unknown_request_id_is_404_and_a_malformed_one_422(service: TestClient) -> None:
    assert service.get("/v1/decisions/never-made", headers=bearer(AUDITOR)).status_code == 404
    response = service.get("/v1/decisions/bad%20id!", headers=bearer(AUDITOR))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(("method", "path"), DECISION_ROUTES)
def test_decision_routes_refuse_a_missing_token_401_and_a_wrong_one_403(
    service: TestClient, method: str, path: str
) -> None:
    assert service.request(method, path).status_code == 401
    for token in ("wrong", AUDITOR[:-1], AUDITOR + "x"):
        assert service.request(method, path, headers=bearer(token)).status_code == 403


def test_an_auditor_token_on_an_admin_route_is_403(service: TestClient) -> None:
    response = service.post("/v1/admin/reload", headers=bearer(AUDITOR))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_the_admin_token_may_read_decisions_too(service: TestClient, applicant: dict[str, Any]) -> None:
    service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "admin-reads-1"})
    wait_logged(service, "admin-reads-1")
    assert service.get("/v1/decisions/admin-reads-1", headers=bearer(ADMIN)).status_code == 200


def test_the_access_log_names_who_looked_at_which_decision(
    service: TestClient, applicant: dict[str, Any], audit_log_dir: Path
) -> None:
    service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "looked-at-1"})
    wait_logged(service, "looked-at-1")
    service.get("/v1/decisions/looked-at-1", headers=bearer(ADMIN))
    entries = AccessLog(audit_log_dir.parent / "audit" / "access.jsonl").entries()
    mine = [(e["actor"], e["role"], e["action"], e["status"]) for e in entries if e.get("request_id") == "looked-at-1"]
    assert ("audit-bob", "auditor", "view", 200) in mine
    assert ("ops-alice", "admin", "view", 200) in mine


@pytest.mark.parametrize(("method", "path"), DECISION_ROUTES)
def test_without_role_tokens_the_decision_routes_do_not_exist(
    trained: TrainedModel, tmp_path: Path, method: str, path: str
) -> None:
    with audit_client(trained.store, tmp_path / "log", admin=None, auditor=None) as client:
        for headers in ({}, bearer(AUDITOR), bearer(ADMIN)):
            assert client.request(method, path, headers=headers).status_code == 404
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith(("/v1/decisions", "/v1/admin"))], sorted(paths)


def test_with_an_auditor_token_the_decision_routes_are_documented(service: TestClient) -> None:
    paths = service.get("/openapi.json").json()["paths"]
    assert {"/v1/decisions", "/v1/decisions/{request_id}", "/v1/decisions/{request_id}/replay"} <= set(paths)


def test_replay_of_a_logged_decision_is_identical(service: TestClient, applicant: dict[str, Any]) -> None:
    service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "replay-me-1"})
    wait_logged(service, "replay-me-1")
    response = service.post("/v1/decisions/replay-me-1/replay", headers=bearer(AUDITOR))
    assert response.status_code == 200, response.text
    body = ReplayOut.model_validate(response.json())
    assert body.status == "identical", body.differences
    assert body.reasons_compared


def test_a_decline_has_a_notice_in_its_record_and_a_readable_pdf(
    service: TestClient, applicant: dict[str, Any], trained: TrainedModel
) -> None:
    answered = service.post("/v1/predict", json=risky(applicant), headers={"X-Request-ID": "declined-1"}).json()
    assert answered["decision"] == "decline", answered
    record = wait_logged(service, "declined-1")
    notice = record["notice"]
    lender = trained.store.config.model.notices.lender
    assert notice["creditor"]["name"] == lender.name
    assert 1 <= len(notice["principal_reasons"]) <= 4
    assert [r["code"] for r in notice["principal_reasons"]] == [r["code"] for r in answered["reasons"]][:4]
    response = service.get("/v1/decisions/declined-1/notice.pdf", headers=bearer(AUDITOR))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    text = " ".join(text.split())
    assert lender.name in text
    assert "Equal Credit Opportunity Act" in text
    assert notice["decision_date"] in text
    for reason in notice["principal_reasons"]:
        assert " ".join(reason["text"].split()) in text, reason["text"]
    assert trained.store.config.model.notices.agency.name in text


def test_an_approval_has_no_notice(service: TestClient, applicant: dict[str, Any]) -> None:
    safe = {
        **applicant,
        "status_of_existing_checking_account": "no_account",
        "duration_in_month": 6,
        "credit_amount": 1000,
        "credit_history": "critical_account",
    }
    answered = service.post("/v1/predict", json=safe, headers={"X-Request-ID": "approved-1"}).json()
    record = wait_logged(service, "approved-1")
    if answered["decision"] == "approve":
        assert record["notice"] is None
        assert service.get("/v1/decisions/approved-1/notice.pdf", headers=bearer(AUDITOR)).status_code == 404
    else:
        pytest.fail(f"the chosen applicant was not approved: {answered}")


def test_an_applicants_decisions_are_listed_newest_first_and_paged(trained: TrainedModel, tmp_path: Path) -> None:
    log_dir = tmp_path / "predictions"
    end = datetime.now(UTC) - timedelta(minutes=1)
    write_synthetic_log(
        log_dir, trained.store.config.features, rows=600, days=5, rows_per_file=100, applicants=10, end=end
    )
    logged = pq.read_table(log_dir).to_pylist()
    applicant = logged[0]["applicant_id"]
    mine = sorted((r for r in logged if r["applicant_id"] == applicant), key=lambda r: r["scored_at"], reverse=True)
    with audit_client(trained.store, log_dir) as client:
        first = client.get(f"/v1/decisions?applicant_id={applicant}&page_size=7", headers=bearer(AUDITOR))
        second = client.get(f"/v1/decisions?applicant_id={applicant}&page_size=7&page=2", headers=bearer(AUDITOR))
        since = mine[2]["scored_at"].isoformat()
        windowed = client.get(
            "/v1/decisions", params={"applicant_id": applicant, "start": since}, headers=bearer(AUDITOR)
        )
        bad = client.get(f"/v1/decisions?applicant_id={applicant}&start=yesterday", headers=bearer(AUDITOR))
    assert first.status_code == 200, first.text
    page_one, page_two = DecisionPage.model_validate(first.json()), DecisionPage.model_validate(second.json())
    assert page_one.total == len(mine)
    assert [d.request_id for d in page_one.decisions + page_two.decisions] == [r["request_id"] for r in mine[:14]]
    assert all(d.applicant_id == applicant for d in page_one.decisions)
    assert [d["request_id"] for d in windowed.json()["decisions"]] == [r["request_id"] for r in mine[:3]]
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "start"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("end=9999-12-31", "end"),  # the whole day ends in year 10000
        ("start=0001-01-01T00:00:00%2B14:00", "start"),  # year 0 in UTC
        ("end=9999-12-31T23:00:00-05:00", "end"),  # year 10000 in UTC
    ],
)
def test_a_window_past_the_calendar_is_422_naming_the_parameter_and_the_rule(
    service: TestClient, query: str, field: str
) -> None:
    response = service.get(f"/v1/decisions?applicant_id=x&{query}", headers=bearer(AUDITOR))
    assert response.status_code == 422, response.text
    entry = response.json()["detail"][0]
    assert (entry["loc"], entry["type"]) == (["query", field], "datetime_out_of_range"), entry
    assert "0001-01-01" in entry["msg"] and "9999-12-31" in entry["msg"], entry


def test_a_decision_shows_its_outcome_once_one_is_loaded(service: TestClient, applicant: dict[str, Any]) -> None:
    service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "with-outcome-1"})
    assert wait_logged(service, "with-outcome-1")["outcome"] is None
    loaded = service.post(
        "/v1/outcomes",
        json={"outcomes": [{"request_id": "with-outcome-1", "outcome": "bad", "observed_at": "2027-01-15"}]},
        headers=bearer(ADMIN),
    )
    assert loaded.status_code == 200, loaded.text
    outcome = service.get("/v1/decisions/with-outcome-1", headers=bearer(AUDITOR)).json()["outcome"]
    assert outcome is not None and outcome["outcome"] == "bad" and outcome["label"] == 1


def test_decisions_scored_with_an_applicant_id_are_found_by_it(service: TestClient, applicant: dict[str, Any]) -> None:
    for i in range(3):
        body = {**applicant, "applicant_id": "applicant-live-7", "duration_in_month": 12 + i}
        response = service.post("/v1/predict", json=body, headers={"X-Request-ID": f"live-{i}"})
        assert response.status_code == 200, response.text
    wait_logged(service, "live-2")
    listed = service.get("/v1/decisions?applicant_id=applicant-live-7", headers=bearer(AUDITOR)).json()
    assert [d["request_id"] for d in listed["decisions"]] == ["live-2", "live-1", "live-0"]
    assert listed["total"] == 3
