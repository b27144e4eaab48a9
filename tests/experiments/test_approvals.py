"""A second person's approval of a promotion, through the real service on a real store (SR 11-7)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from credit_risk import registry
from credit_risk.lifecycle import ledger
from tests.experiments.conftest import ADMIN_TOKEN, APPROVER_TOKEN, TwoModels, bearer, service, with_model

pytestmark = pytest.mark.code

ALIAS = "production"


def _production(two: TwoModels) -> str | None:
    return registry.aliases_of(two.store.client, two.store.config.model.registry.model_name).get(ALIAS)


def _request(client, two: TwoModels) -> dict:
    response = client.post(
        "/v1/admin/promote",
        json={"version": two.challenger, "reason": "test: quarterly refresh", "force": True},
        headers=bearer(ADMIN_TOKEN),
    )
    assert response.status_code == 202, response.text
    return response.json()["approval"]


def test_a_promotion_request_waits_for_approval_and_moves_nothing(two: TwoModels, tmp_path: Path) -> None:
    env = {"CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN, "CREDIT_RISK_ADMIN_TOKEN_NAME": "alice"}
    with service(two.store, tmp_path / "log", **env) as client:
        approval = _request(client, two)
        assert approval["state"] == "pending" and approval["version"] == two.challenger
        assert approval["requester"] == "alice"
        assert approval["validation_report"], "the request links the version's validation report"
        assert _production(two) == two.champion, "a pending request must not move the alias"
        listed = client.get("/v1/approvals").json()
        assert listed["required"] is True
        assert [a["id"] for a in listed["approvals"] if a["state"] == "pending"] == [approval["id"]]


def test_the_requester_cannot_approve_their_own_request(two: TwoModels, tmp_path: Path) -> None:
    env = {
        "CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN,
        "CREDIT_RISK_ADMIN_TOKEN_NAME": "alice",
        "CREDIT_RISK_APPROVER_TOKEN_NAME": "alice",
    }
    with service(two.store, tmp_path / "log", **env) as client:
        approval = _request(client, two)
        response = client.post(
            f"/v1/approvals/{approval['id']}/approve", json={"reason": "looks fine"}, headers=bearer(APPROVER_TOKEN)
        )
        assert response.status_code == 403, response.text
        assert "alice" in response.json()["detail"]
        assert _production(two) == two.champion


def test_an_approved_request_moves_the_alias_and_the_service_follows(two: TwoModels, tmp_path: Path) -> None:
    env = {
        "CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN,
        "CREDIT_RISK_ADMIN_TOKEN_NAME": "alice",
        "CREDIT_RISK_APPROVER_TOKEN_NAME": "bob",
    }
    with service(two.store, tmp_path / "log", **env) as client:
        approval = _request(client, two)
        response = client.post(
            f"/v1/approvals/{approval['id']}/approve",
            json={"reason": "independent validation done"},
            headers=bearer(APPROVER_TOKEN),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["approval"]["state"] == "approved" and body["approval"]["decided_by"] == "bob (approver)"
        assert _production(two) == two.challenger
        assert body["served_version"] == two.challenger
        assert client.get("/v1/model").json()["version"] == two.challenger
        assert body["event"]["figures"]["approval_id"] == approval["id"], "the move names the approval it carries out"
    entries = ledger.control_history(two.store.client, two.store.config.model.registry.model_name, "approval")
    steps = [(e.action, e.actor) for e in entries if e.figures.get("id") == approval["id"]]
    assert steps == [("request", "alice (admin)"), ("approve", "bob (approver)"), ("promoted", "bob (approver)")]


def test_an_expired_request_cannot_be_approved(two: TwoModels, tmp_path: Path) -> None:
    config = with_model(two.store.config, "promotion", approval_hours=1 / 3600)  # one second
    env = {"CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN, "CREDIT_RISK_APPROVER_TOKEN_NAME": "bob"}
    with service(two.store, tmp_path / "log", config=config, **env) as client:
        approval = _request(client, two)
        time.sleep(1.5)
        response = client.post(
            f"/v1/approvals/{approval['id']}/approve", json={"reason": "late"}, headers=bearer(APPROVER_TOKEN)
        )
        assert response.status_code == 409, response.text
        assert "expired" in response.json()["detail"]
        assert _production(two) == two.champion


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_later(two: TwoModels, tmp_path: Path) -> None:
    env = {"CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN, "CREDIT_RISK_APPROVER_TOKEN_NAME": "bob"}
    with service(two.store, tmp_path / "log", **env) as client:
        approval = _request(client, two)
        url = f"/v1/approvals/{approval['id']}"
        rejected = client.post(
            f"{url}/reject", json={"reason": "the shadow shows too many swaps"}, headers=bearer(APPROVER_TOKEN)
        )
        assert rejected.status_code == 200 and rejected.json()["approval"]["state"] == "rejected"
        later = client.post(f"{url}/approve", json={"reason": "changed my mind"}, headers=bearer(APPROVER_TOKEN))
        assert later.status_code == 409
        assert _production(two) == two.champion


def test_an_admin_token_cannot_approve(two: TwoModels, tmp_path: Path) -> None:
    env = {"CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN, "CREDIT_RISK_APPROVER_TOKEN_NAME": "bob"}
    with service(two.store, tmp_path / "log", **env) as client:
        approval = _request(client, two)
        response = client.post(
            f"/v1/approvals/{approval['id']}/approve", json={"reason": "mine"}, headers=bearer(ADMIN_TOKEN)
        )
        assert response.status_code == 403


def test_a_rollback_needs_no_approval_and_is_recorded(two: TwoModels, tmp_path: Path) -> None:
    client_store = two.store.client
    name = two.store.config.model.registry.model_name
    from credit_risk import lifecycle

    lifecycle.move_alias(client_store, name, ALIAS, two.challenger, action="test", reason="set-up")
    env = {"CREDIT_RISK_APPROVER_TOKEN": APPROVER_TOKEN}
    with service(two.store, tmp_path / "log", **env) as client:
        response = client.post(
            "/v1/admin/rollback", json={"version": two.champion, "reason": "test: back"}, headers=bearer(ADMIN_TOKEN)
        )
        assert response.status_code == 200, response.text
        assert response.json()["event"]["action"] == "rollback"
    assert _production(two) == two.champion


def test_without_an_approver_token_a_promotion_moves_at_once(two: TwoModels, tmp_path: Path) -> None:
    with service(two.store, tmp_path / "log") as client:
        response = client.post(
            "/v1/admin/promote",
            json={"version": two.challenger, "reason": "test: no approver configured", "force": True},
            headers=bearer(ADMIN_TOKEN),
        )
        assert response.status_code == 200, response.text
    assert _production(two) == two.challenger
