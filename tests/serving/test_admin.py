"""Admin routes: a bearer token compared in constant time; off (404) when no token is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TrainedModel
from tests.serving.conftest import ADMIN_TOKEN, app_client

pytestmark = pytest.mark.code

ADMIN_CALLS = [
    ("/v1/admin/reload", None),
    ("/v1/admin/promote", {"reason": "test"}),
    ("/v1/admin/rollback", {"reason": "test"}),
]


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_admin_routes_are_off_without_a_configured_token(
    trained: TrainedModel, tmp_path: Path, path: str, body: dict | None
) -> None:
    with app_client(trained.store, tmp_path, admin_token=None) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 404, (headers, response.text)


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_admin_routes_refuse_a_missing_token_with_401(client: TestClient, path: str, body: dict | None) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_admin_routes_refuse_a_wrong_token_with_403(client: TestClient, path: str, body: dict | None) -> None:
    for token in ("wrong", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", "é" * 10):
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}".encode()})
        assert response.status_code == 403, token


def test_admin_routes_refuse_other_auth_schemes(client: TestClient) -> None:
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    assert response.status_code == 401


def test_reload_with_the_token_reports_the_attempt(client: TestClient, trained: TrainedModel) -> None:
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["attempt"]["outcome"] == "unchanged"
    assert body["served_version"] == str(trained.version.version)


def test_promote_body_is_validated_before_anything_runs(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for body, field in (
        ({"version": "../../etc", "reason": "x"}, "version"),
        ({"version": 2, "reason": "x"}, "version"),
        ({"reason": "x", "model_uri": "s3://evil/model"}, "model_uri"),
        ({"reason": "x", "dry_run": "yes"}, "dry_run"),
    ):
        response = client.post("/v1/admin/promote", json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == field


def test_refused_attempts_are_in_the_access_log_with_who_and_why(trained: TrainedModel, tmp_path: Path) -> None:
    import json

    with app_client(trained.store, tmp_path / "log") as client:
        assert client.post("/v1/admin/reload").status_code == 401
        assert (
            client.post("/v1/admin/reload", headers={"Authorization": "Bearer not-a-token-at-all"}).status_code == 403
        )
    lines = (tmp_path / "audit" / "access.jsonl").read_text().splitlines()
    refused = [json.loads(line) for line in lines if json.loads(line)["action"] == "refused"]
    assert [(entry["status"], entry["path"], entry["method"]) for entry in refused] == [
        (401, "/v1/admin/reload", "POST"),
        (403, "/v1/admin/reload", "POST"),
    ]
    assert all("not-a-token" not in line for line in lines), "the access log must not hold a tried token"


def test_me_names_the_token_its_role_and_what_it_may_do(client: TestClient) -> None:
    answer = client.get("/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["name"], body["role"]) == ("admin", "admin")
    assert body["permissions"] == ["admin", "auditor", "reviewer"] and body["description"]
    assert client.get("/v1/me").status_code == 401
    assert client.get("/v1/me", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 403


def test_me_does_not_exist_without_role_tokens(trained: TrainedModel, tmp_path: Path) -> None:
    with app_client(trained.store, tmp_path, admin_token=None) as client:
        assert client.get("/v1/me", headers={"Authorization": "Bearer anything-0123456789"}).status_code == 404
        assert "/v1/me" not in client.get("/openapi.json").json()["paths"]
