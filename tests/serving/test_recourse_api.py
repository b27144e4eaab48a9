"""What would change the decision, through the real service on the session's real model."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from credit_risk.audit.access import AccessLog
from serving.api.decision_schemas import RecourseOut
from serving.schemas import BatchResponse, PredictionResponse
from tests.conftest import TrainedModel
from tests.serving.test_decisions import risky
from tests.support.audit import AUDITOR, audit_client, bearer, wait_logged

pytestmark = pytest.mark.code


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recourse-log") / "predictions"


@pytest.fixture(scope="module")
def service(trained: TrainedModel, log_dir: Path) -> Iterator[TestClient]:
    with audit_client(trained.store, log_dir) as client:
        yield client


def _applied(applicant: dict[str, Any], alternative: dict[str, Any]) -> dict[str, Any]:
    return {**applicant, **{change["field"]: change["to"] for change in alternative["changes"]}}


def _safe(applicant: dict[str, Any]) -> dict[str, Any]:
    """An applicant the model approves."""
    return {
        **applicant,
        "status_of_existing_checking_account": "no_account",
        "duration_in_month": 6,
        "credit_amount": 1000,
        "credit_history": "critical_account",
        "savings_account_and_bonds": "over_1000_dm",
        "installment_rate_in_percentage_of_disposable_income": 1,
    }


def test_a_decline_with_recourse_gets_alternatives_the_service_itself_decides_as_claimed(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    declined = risky(applicant)
    response = service.post("/v1/predict?recourse=true", json=declined)
    assert response.status_code == 200, response.text
    body = PredictionResponse.model_validate(response.json()).model_dump(by_alias=True)
    assert body["decision"] == "decline"
    assert 1 <= len(body["recourse"]) <= 3, body["recourse_note"]
    for alternative in body["recourse"]:
        assert len(alternative["changes"]) <= 2
        again = service.post("/v1/predict", json=_applied(declined, alternative)).json()
        assert again["decision"] == alternative["decision"], (alternative, again)
        assert again["probability_of_default"] == pytest.approx(alternative["probability_of_default"], abs=1e-9)


def test_recourse_is_absent_unless_asked_for(service: TestClient, applicant: dict[str, Any]) -> None:
    body = service.post("/v1/predict", json=risky(applicant)).json()
    assert "recourse" not in body and "recourse_note" not in body


def test_an_approval_with_recourse_gets_none_and_a_note(service: TestClient, applicant: dict[str, Any]) -> None:
    body = service.post("/v1/predict?recourse=true", json=_safe(applicant)).json()
    assert body["decision"] == "approve", body
    assert body["recourse"] == [] and "approved" in body["recourse_note"]


def test_a_batch_with_recourse_gives_each_applicant_what_the_single_route_gives(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    declined = risky(applicant)
    applicants = [declined, _safe(applicant), {**declined, "duration_in_month": 24}, applicant]
    response = service.post("/v1/predict/batch?recourse=true", json={"applicants": applicants})
    assert response.status_code == 200, response.text
    BatchResponse.model_validate(response.json())
    results = response.json()["results"]
    for one, result in zip(applicants, results, strict=True):
        single = service.post("/v1/predict?recourse=true", json=one).json()
        assert result["decision"] == single["decision"]
        assert (result["recourse"], result["recourse_note"]) == (single["recourse"], single["recourse_note"]), one
    assert results[0]["decision"] == "decline" and results[0]["recourse"], results[0]["recourse_note"]
    assert results[1]["decision"] == "approve" and "approved" in results[1]["recourse_note"]


def test_a_batch_carries_no_recourse_unless_asked_for(service: TestClient, applicant: dict[str, Any]) -> None:
    results = service.post("/v1/predict/batch", json={"applicants": [risky(applicant)]}).json()["results"]
    assert "recourse" not in results[0] and "recourse_note" not in results[0]


def test_an_auditor_gets_the_recourse_of_a_logged_decline(service: TestClient, applicant: dict[str, Any]) -> None:
    declined = risky(applicant)
    answered = service.post("/v1/predict", json=declined, headers={"X-Request-ID": "recourse-1"}).json()
    wait_logged(service, "recourse-1")
    response = service.get("/v1/decisions/recourse-1/recourse", headers=bearer(AUDITOR))
    assert response.status_code == 200, response.text
    body = RecourseOut.model_validate(response.json())
    assert body.logged.decision == answered["decision"] == body.decision == "decline"
    assert body.model["version"] == answered["model"]["version"]
    assert body.recourse, body.recourse_note
    for alternative in body.recourse:
        assert (
            service.post("/v1/predict", json=_applied(declined, alternative)).json()["decision"]
            == alternative["decision"]
        )


def test_the_recourse_of_a_decision_needs_the_auditor_role(service: TestClient) -> None:
    assert service.get("/v1/decisions/recourse-1/recourse").status_code == 401
    assert (
        service.get("/v1/decisions/recourse-1/recourse", headers=bearer("wrong-token-000000000000")).status_code == 403
    )


def test_the_recourse_of_an_unknown_decision_is_404(service: TestClient) -> None:
    assert service.get("/v1/decisions/no-such-id/recourse", headers=bearer(AUDITOR)).status_code == 404


def test_a_bad_recourse_flag_is_422_naming_it(service: TestClient, applicant: dict[str, Any]) -> None:
    response = service.post("/v1/predict?recourse=perhaps", json=applicant)
    assert response.status_code == 422
    assert "recourse" in response.text


def test_the_access_log_records_who_asked_for_a_decisions_recourse(
    service: TestClient, applicant: dict[str, Any], log_dir: Path
) -> None:
    service.post("/v1/predict", json=risky(applicant), headers={"X-Request-ID": "recourse-2"})
    wait_logged(service, "recourse-2")
    assert service.get("/v1/decisions/recourse-2/recourse", headers=bearer(AUDITOR)).status_code == 200
    entries = AccessLog(log_dir.parent / "audit" / "access.jsonl").entries()
    mine = [(e["actor"], e["action"], e["status"]) for e in entries if e.get("request_id") == "recourse-2"]
    assert ("audit-bob", "recourse", 200) in mine


def test_a_notice_carries_no_recourse_unless_configured(service: TestClient, applicant: dict[str, Any]) -> None:
    service.post("/v1/predict", json=risky(applicant), headers={"X-Request-ID": "recourse-3"})
    notice = wait_logged(service, "recourse-3")["notice"]
    assert notice is not None and "recourse" not in notice


def test_with_notices_recourse_the_notice_and_its_pdf_say_what_would_have_changed_the_decision(
    trained: TrainedModel, applicant: dict[str, Any], tmp_path: Path
) -> None:
    config = trained.store.config
    notices = config.model.notices.model_copy(update={"recourse": True})
    config = config.model_copy(update={"model": config.model.model_copy(update={"notices": notices})})
    with audit_client(trained.store, tmp_path / "predictions", config=config) as client:
        client.post("/v1/predict", json=risky(applicant), headers={"X-Request-ID": "notice-recourse-1"})
        notice = wait_logged(client, "notice-recourse-1")["notice"]
        expected = client.get("/v1/decisions/notice-recourse-1/recourse", headers=bearer(AUDITOR)).json()
        assert notice["recourse"] == [
            {"decision": a["decision"], "summary": a["summary"]} for a in expected["recourse"]
        ], notice
        assert notice["recourse"], "a declined applicant with actionable fields should get an alternative"
        pdf = client.get("/v1/decisions/notice-recourse-1/notice.pdf", headers=bearer(AUDITOR))
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "What would have changed the decision:" in text
    assert notice["recourse"][0]["summary"] in text
