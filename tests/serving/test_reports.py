"""The registry view links each version's validation report, and the API serves it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.schemas import RegistryOut

pytestmark = pytest.mark.code


def test_the_registry_view_links_every_versions_validation_report(client: TestClient) -> None:
    body = RegistryOut.model_validate(client.get("/v1/registry").json())
    assert body.versions
    for version in body.versions:
        assert version.validation_report == f"/v1/registry/versions/{version.version}/validation_report"
        response = client.get(version.validation_report)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert f"version {version.version}</h1>" in response.text


def test_an_unknown_or_malformed_version_has_no_report(client: TestClient) -> None:
    assert client.get("/v1/registry/versions/999/validation_report").status_code == 404
    assert client.get("/v1/registry/versions/abc/validation_report").status_code == 422
