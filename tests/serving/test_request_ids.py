"""A request id names one decision: a reused id never replaces the decision it names (security review, item 2).

In-process against the real service, its real prediction log and the session's real model;
the workers and restart cases against real uvicorn processes.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.conftest import TrainedModel
from tests.support.api import running_api
from tests.support.audit import ADMIN, AUDITOR, audit_client, bearer, wait_logged

pytestmark = pytest.mark.code


@pytest.fixture(scope="module")
def service(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with audit_client(trained.store, tmp_path_factory.mktemp("request-ids") / "predictions") as client:
        yield client


def declined(applicant: dict[str, Any], who: str) -> dict[str, Any]:
    """An applicant the model declines (overdrawn, long loan, large amount, poor history)."""
    return {
        **applicant,
        "applicant_id": who,
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }


def approved(applicant: dict[str, Any], who: str) -> dict[str, Any]:
    return {
        **applicant,
        "applicant_id": who,
        "status_of_existing_checking_account": "no_account",
        "duration_in_month": 6,
        "credit_amount": 1000,
        "credit_history": "critical_account",
    }


def _pdf_text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def test_a_reused_request_id_with_another_body_is_409_and_the_first_decision_stands(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    first = service.post("/v1/predict", json=declined(applicant, "person-a"), headers={"X-Request-ID": "dup-1"})
    assert first.status_code == 200 and first.json()["decision"] == "decline", first.text
    second = service.post("/v1/predict", json=approved(applicant, "person-b"), headers={"X-Request-ID": "dup-1"})
    assert second.status_code == 409, second.text
    assert "'dup-1'" in second.json()["detail"] and second.json()["rule"] == "request_id_reused", second.json()

    found = wait_logged(service, "dup-1")
    assert (found["applicant_id"], found["decision"]) == ("person-a", "decline"), found
    assert [r["code"] for r in found["reasons"]] == [r["code"] for r in first.json()["reasons"]]
    notice = service.get("/v1/decisions/dup-1/notice.pdf", headers=bearer(AUDITOR))
    assert notice.status_code == 200, "the first decision (a decline) keeps its notice"
    text = _pdf_text(notice.content)
    for reason in found["notice"]["principal_reasons"]:
        assert " ".join(reason["text"].split()) in text, reason["text"]
    replay = service.post("/v1/decisions/dup-1/replay", headers=bearer(AUDITOR)).json()
    assert replay["status"] == "identical" and replay["replayed"]["decision"] == "decline", replay
    listed = service.get("/v1/decisions", params={"applicant_id": "person-b"}, headers=bearer(AUDITOR)).json()
    assert listed["total"] == 0, "the refused request logged no decision"


def test_a_retry_with_the_same_body_gets_the_first_answer_and_logs_nothing_new(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    body = declined(applicant, "person-retry")
    first = service.post("/v1/predict", json=body, headers={"X-Request-ID": "retry-1"})
    again = service.post("/v1/predict", json=body, headers={"X-Request-ID": "retry-1"})
    assert again.status_code == 200, again.text
    assert again.content == first.content, "the first answer, byte for byte (its scored_at included)"
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    wait_logged(service, "retry-1")
    listed = service.get("/v1/decisions", params={"applicant_id": "person-retry"}, headers=bearer(AUDITOR)).json()
    assert listed["total"] == 1, listed


def test_the_same_body_with_reasons_off_is_another_request(service: TestClient, applicant: dict[str, Any]) -> None:
    body = declined(applicant, "person-options")
    assert service.post("/v1/predict", json=body, headers={"X-Request-ID": "opts-1"}).status_code == 200
    other = service.post("/v1/predict?reasons=false", json=body, headers={"X-Request-ID": "opts-1"})
    assert other.status_code == 409, other.text


def test_every_row_of_a_batch_with_the_longest_id_is_found(service: TestClient, applicant: dict[str, Any]) -> None:
    batch_id = "b" * 128  # the longest X-Request-ID: its rows' ids are longer
    rows = [declined(applicant, "batch-row-0"), approved(applicant, "batch-row-1")]
    answer = service.post("/v1/predict/batch", json={"applicants": rows}, headers={"X-Request-ID": batch_id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["batch_id"] == batch_id
    for row, result in enumerate(answer.json()["results"]):
        assert result["request_id"] == f"{batch_id}-{row}"
        found = wait_logged(service, result["request_id"])
        assert found["applicant_id"] == f"batch-row-{row}", found


def test_a_batch_whose_row_id_is_taken_is_409_naming_the_row(service: TestClient, applicant: dict[str, Any]) -> None:
    assert service.post("/v1/predict", json=applicant, headers={"X-Request-ID": "bx-1"}).status_code == 200
    rows = [approved(applicant, "bx-row-0"), approved(applicant, "bx-row-1")]
    refused = service.post("/v1/predict/batch", json={"applicants": rows}, headers={"X-Request-ID": "bx"})
    assert refused.status_code == 409, refused.text
    assert "row 1 'bx-1'" in refused.json()["detail"], refused.json()
    listed = service.get("/v1/decisions", params={"applicant_id": "bx-row-0"}, headers=bearer(AUDITOR)).json()
    assert listed["total"] == 0, "no row of a refused batch is logged"


def test_a_service_made_id_cannot_be_reused_by_a_client(service: TestClient, applicant: dict[str, Any]) -> None:
    made = service.post("/v1/predict", json=declined(applicant, "person-made")).json()["request_id"]
    reused = service.post("/v1/predict", json=approved(applicant, "person-x"), headers={"X-Request-ID": made})
    assert reused.status_code == 409, reused.text


def test_an_id_that_cannot_be_recorded_is_answered_503(
    trained: TrainedModel, tmp_path: Path, applicant: dict[str, Any]
) -> None:
    with audit_client(trained.store, tmp_path / "predictions") as client:
        path = client.app.state.runtime.ids.path
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("drop table ids")  # the ledger's next write fails, as on a full disk
        for query in ("", "?recourse=false"):  # the fast path and the route, with an id the client chose
            refused = client.post(
                f"/v1/predict{query}",
                json=approved(applicant, "person-unrecorded"),
                headers={"X-Request-ID": f"unrecorded{query[1:5]}"},
            )
            assert refused.status_code == 503, refused.text
            assert "request id ledger unavailable" in refused.json()["detail"], refused.json()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_reused_id_is_refused_by_every_worker_and_after_a_restart(
    trained: TrainedModel, tmp_path: Path, applicant: dict[str, Any]
) -> None:
    log_dir = tmp_path / "predictions"
    first = declined(applicant, "person-a")

    def post(url: str, body: dict[str, Any]) -> httpx.Response:  # a new connection each time
        return httpx.post(
            f"{url}/v1/predict", json=body, headers={"X-Request-ID": "dup-w"}, trust_env=False, timeout=30
        )

    with running_api(trained.store, tmp_path=tmp_path, workers=2, log_dir=log_dir) as api:
        assert post(api.url, first).status_code == 200
        # the kernel spreads new connections over both workers: each must know the id the other claimed
        statuses = [post(api.url, approved(applicant, f"person-{i}")).status_code for i in range(12)]
        assert statuses == [409] * 12, statuses
    with running_api(trained.store, tmp_path=tmp_path, log_dir=log_dir) as api:
        assert post(api.url, approved(applicant, "late")).status_code == 409, "the id is still taken after a restart"
        retried = post(api.url, first)
        assert retried.status_code == 200 and retried.headers["idempotent-replayed"] == "true"


def test_an_outcome_by_an_applicant_id_with_several_decisions_is_refused_naming_them(
    service: TestClient, applicant: dict[str, Any]
) -> None:
    for request_id in ("twin-1", "twin-2"):
        body = declined(applicant, "person-twice")
        assert service.post("/v1/predict", json=body, headers={"X-Request-ID": request_id}).status_code == 200
    wait_logged(service, "twin-2")
    loaded = service.post(
        "/v1/outcomes",
        json={"outcomes": [{"applicant_id": "person-twice", "outcome": "bad", "observed_at": "2099-01-01"}]},
        headers=bearer(ADMIN),
    )
    assert loaded.status_code == 422, loaded.text
    entry = loaded.json()["detail"][0]
    assert (entry["field"], entry["type"], entry["row"]) == ("applicant_id", "ambiguous_applicant", 0), entry
    assert "twin-1" in entry["msg"] and "twin-2" in entry["msg"] and "request_id" in entry["msg"], entry


def test_ids_the_service_makes_are_known_by_every_worker_and_after_a_restart_without_a_write(tmp_path: Path) -> None:
    import stat
    import uuid

    from credit_risk.audit.request_ids import KEY_FILE_NAME, RequestIdConflictError, RequestIdLedger

    first, second = (RequestIdLedger(tmp_path / "ids.sqlite", retention_days=30) for _ in range(2))  # two workers
    try:
        made = [first.made.new() for _ in range(300)]
        assert len(set(made)) == 300
        assert all(uuid.UUID(hex=value).version == 4 and uuid.UUID(hex=value).hex == value for value in made)
        assert all(second.made.made_here(value) for value in made), "the workers share the instance's key"
        forged = [uuid.uuid4().hex, made[0][:-1] + ("0" if made[0][-1] != "0" else "1"), "not-hex" * 4, made[0][:30]]
        assert not any(first.made.made_here(value) for value in forged)
        with contextlib.closing(sqlite3.connect(first.path)) as other:
            assert other.execute("select count(*) from ids").fetchone()[0] == 0, "a made id is never written"
        with pytest.raises(RequestIdConflictError, match="one this service made for another request"):
            second.claim(made[0], b"digest", client=True)
        assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600
    finally:
        first.close()
        second.close()
    restarted = RequestIdLedger(tmp_path / "ids.sqlite", retention_days=30)
    try:
        assert restarted.made.made_here(made[-1])
    finally:
        restarted.close()
