"""The artifact digest and the signing key: what ``registry.fetch_verified`` checks at every load."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from fastapi.testclient import TestClient
from mlflow.entities.model_registry import ModelVersion

from credit_risk import lifecycle, registry
from credit_risk.config import PROJECT_ROOT, ProjectConfig, SecurityConfig, Settings, load_project_config
from pipelines.train import train
from serving.app import create_app
from serving.state import ModelHolder
from tests.conftest import Store, make_store, write_config_dir
from tests.serving.conftest import LOOPBACK, wait_ready, with_serving

pytestmark = pytest.mark.code

NAME = "credit-risk"
KEY = "signing-key-held-outside-mlflow-0123456789"


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def _previous_digest(files: dict[str, bytes]) -> str:
    """The encoding used before: ``path NUL content NUL`` per file, in path order."""
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode() + b"\0" + files[relative] + b"\0")
    return digest.hexdigest()


def test_two_file_sets_that_collided_before_have_different_digests(tmp_path: Path) -> None:
    # one file whose content embeds a separator and a second entry, against those two files
    one = {"MLmodel": b"flavors: {}\0pyfunc_model.py\0import os"}
    two = {"MLmodel": b"flavors: {}", "pyfunc_model.py": b"import os"}
    assert _previous_digest(one) == _previous_digest(two)  # what the old scheme could not tell apart
    assert registry.directory_digest(_folder(tmp_path / "one", one)) != registry.directory_digest(
        _folder(tmp_path / "two", two)
    )
    # the same files give the same digest, wherever they are
    assert registry.directory_digest(_folder(tmp_path / "copy", one)) == registry.directory_digest(tmp_path / "one")


def test_only_the_root_registered_model_meta_is_left_out(tmp_path: Path) -> None:
    files = {"MLmodel": b"flavors: {}", "artifacts/scoring_model/model.json": b"{}"}
    folder = _folder(tmp_path / "model", files)
    base = registry.directory_digest(folder)
    (folder / "registered_model_meta").write_text("model_name: credit-risk\nmodel_version: '3'\n")
    assert registry.directory_digest(folder) == base, "MLflow's bookkeeping file at the root is not the model"
    nested = folder / "artifacts" / "scoring_model" / "registered_model_meta"
    nested.write_bytes(b"anything")
    with_nested = registry.directory_digest(folder)
    assert with_nested != base, "a file of that name below the root is hashed like any model file"
    nested.write_bytes(b"anything else")
    assert registry.directory_digest(folder) != with_nested


# ------------------------------------------------------------------ the signing key


@dataclass
class Signed:
    store: Store
    keyed: Settings  # the same store, with CREDIT_RISK_MODEL_SIGNING_KEY set
    version: str


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    """A version trained and promoted with the signing key set."""
    store = make_store(tmp_path_factory.mktemp("signed"))
    keyed = Settings(
        MLFLOW_TRACKING_URI=store.uri,
        CREDIT_RISK_CONFIG_DIR=store.settings.config_dir,
        CREDIT_RISK_MODEL_SIGNING_KEY=KEY,
    )
    registry.connect(keyed, PROJECT_ROOT)
    version = str(train(store.config, keyed).version)
    lifecycle.promote(store.config, keyed, reason="signed first model")
    yield Signed(store, keyed, version)


def _version(signed: Signed):
    return registry.get_version(signed.store.client, NAME, signed.version)


def _model_json(signed: Signed) -> Path:
    uri = signed.store.client.get_model_version_download_uri(NAME, signed.version)
    return next(Path(unquote(urlparse(uri).path)).rglob("model.json"))


def test_registration_signs_the_digest_and_a_load_checks_it(signed: Signed, tmp_path: Path) -> None:
    version = _version(signed)
    digest = version.tags[registry.ARTIFACT_DIGEST_TAG]
    assert version.tags[registry.ARTIFACT_SIGNATURE_TAG] == registry.sign_digest(
        KEY, name=NAME, version=signed.version, digest=digest
    )
    local = registry.fetch_verified(signed.store.client, version, tmp_path / "ok", signing_key=KEY)
    assert registry.directory_digest(local) == digest
    with pytest.raises(registry.UnverifiedArtifactError, match="signature does not match"):
        registry.fetch_verified(signed.store.client, version, tmp_path / "wrong", signing_key="another key")


def test_a_forged_digest_tag_is_refused_when_the_key_is_set(signed: Signed, tmp_path: Path) -> None:
    """Someone who can write the registry alters the model and rewrites its digest tag: without the
    key the forgery passes the digest check; with the key every load refuses it."""
    client = signed.store.client
    target = _model_json(signed)
    original_bytes = target.read_bytes()
    original_tag = _version(signed).tags[registry.ARTIFACT_DIGEST_TAG]
    try:
        target.write_bytes(original_bytes.replace(b'"kind"', b'"kind" ', 1))
        forged = registry.directory_digest(registry.download_version(client, NAME, signed.version, tmp_path / "f"))
        client.set_model_version_tag(NAME, signed.version, registry.ARTIFACT_DIGEST_TAG, forged)
        registry.fetch_verified(client, _version(signed), tmp_path / "nokey")  # no key: nothing can tell
        with pytest.raises(registry.UnverifiedArtifactError, match="signature does not match"):
            registry.fetch_verified(client, _version(signed), tmp_path / "key", signing_key=KEY)
        holder = ModelHolder(config=signed.store.config, client_factory=lambda: client, signing_key=KEY)
        attempt = holder.refresh(trigger="admin")
        assert (attempt.outcome, attempt.version) == ("refused", signed.version)
        assert "signature does not match" in attempt.error and holder.served is None
    finally:
        target.write_bytes(original_bytes)
        client.set_model_version_tag(NAME, signed.version, registry.ARTIFACT_DIGEST_TAG, original_tag)
    holder = ModelHolder(config=signed.store.config, client_factory=lambda: client, signing_key=KEY)
    assert holder.refresh(trigger="admin").outcome == "loaded"


def test_a_version_without_a_signature_is_refused_when_the_key_is_set(signed: Signed, tmp_path: Path) -> None:
    client = signed.store.client
    signature = _version(signed).tags[registry.ARTIFACT_SIGNATURE_TAG]
    client.delete_model_version_tag(NAME, signed.version, registry.ARTIFACT_SIGNATURE_TAG)
    try:
        with pytest.raises(registry.UnverifiedArtifactError, match="no artifact_sha256_hmac tag"):
            registry.fetch_verified(client, _version(signed), tmp_path, signing_key=KEY)
        registry.fetch_verified(client, _version(signed), tmp_path / "nokey")  # the key is optional
    finally:
        client.set_model_version_tag(NAME, signed.version, registry.ARTIFACT_SIGNATURE_TAG, signature)


# ------------------------------------------------------------------ security.require_signed_models


def _signatures_required(config: ProjectConfig) -> ProjectConfig:
    security = SecurityConfig(require_signed_models=True)
    return config.model_copy(update={"model": config.model.model_copy(update={"security": security})})


@pytest.fixture(scope="module")
def unsigned_copy(signed: Signed) -> ModelVersion:
    """A second version of the same artifacts, registered without a signature (as a registry writer
    without the key would register one): digest tag right, no artifact_sha256_hmac tag."""
    client = signed.store.client
    original = _version(signed)
    digest = original.tags[registry.ARTIFACT_DIGEST_TAG]
    copy = client.create_model_version(
        NAME, original.source, run_id=original.run_id, tags={registry.ARTIFACT_DIGEST_TAG: digest}
    )
    return client.get_model_version(NAME, copy.version)


def _app_settings(signed: Signed, log_dir: Path, *, key: str | None) -> Settings:
    return Settings(
        MLFLOW_TRACKING_URI=signed.store.uri,
        CREDIT_RISK_CONFIG_DIR=signed.store.settings.config_dir,
        CREDIT_RISK_LOG_DIR=log_dir,
        CREDIT_RISK_MODEL_SIGNING_KEY=key,
    )


def test_required_signatures_refuse_every_version_while_no_key_is_set(signed: Signed) -> None:
    holder = ModelHolder(config=_signatures_required(signed.store.config), client_factory=lambda: signed.store.client)
    attempt = holder.refresh(trigger="startup")
    assert (attempt.outcome, attempt.version) == ("refused", signed.version)
    assert "require_signed_models" in attempt.error and "CREDIT_RISK_MODEL_SIGNING_KEY" in attempt.error
    assert holder.served is None and "require_signed_models" in holder.not_ready_reason()


def test_a_service_requiring_signatures_without_a_key_is_not_ready_and_says_why(
    signed: Signed, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_signatures_required(signed.store.config), _app_settings(signed, tmp_path, key=None))
    with caplog.at_level(logging.INFO), TestClient(app, base_url=LOOPBACK) as client:
        ready = client.get("/ready")  # the lifespan waited for the first attempt
    assert ready.status_code == 503
    assert "require_signed_models" in ready.json()["reason"], ready.json()
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "refused" in r.getMessage()]
    assert refusals and "require_signed_models" in refusals[0], refusals


def test_v1_model_says_signed_for_a_version_checked_under_the_key(signed: Signed, tmp_path: Path) -> None:
    app = create_app(signed.store.config, _app_settings(signed, tmp_path, key=KEY))
    with TestClient(app, base_url=LOOPBACK) as client:
        wait_ready(client)
        info = client.get("/v1/model").json()
    assert (info["version"], info["signed"]) == (signed.version, True)


def test_the_service_keeps_the_signed_version_and_ready_says_why_it_refused_the_unsigned_one(
    signed: Signed, unsigned_copy: ModelVersion, tmp_path: Path
) -> None:
    config = with_serving(_signatures_required(signed.store.config), poll_interval_seconds=0.2)
    app = create_app(config, _app_settings(signed, tmp_path, key=KEY))
    client_ = signed.store.client
    with TestClient(app, base_url=LOOPBACK) as client:
        wait_ready(client)
        client_.set_registered_model_alias(NAME, "production", unsigned_copy.version)
        try:
            deadline = time.monotonic() + 30
            while "refused" not in (body := client.get("/ready").json()) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            client_.set_registered_model_alias(NAME, "production", signed.version)
    assert body["ready"] is True and body["version"] == signed.version, body
    assert f"version {unsigned_copy.version} refused" in body["refused"], body
    assert "no artifact_sha256_hmac tag" in body["refused"], body


def test_promotion_refuses_an_unsigned_version_when_signatures_are_required(
    signed: Signed, unsigned_copy: ModelVersion
) -> None:
    config = _signatures_required(signed.store.config)
    with pytest.raises(lifecycle.PromotionRefused, match="require_signed_models"):
        lifecycle.promote(config, signed.store.settings, version=str(unsigned_copy.version), reason="unsigned")
    assert registry.aliases_of(signed.store.client, NAME)["production"] == signed.version


def test_the_production_example_config_serves_signed_versions_only(signed: Signed, tmp_path: Path) -> None:
    """examples/production/model_config.yaml with config/'s features and training: it loads, it requires
    signatures, and a holder with it serves the signed version only under the key."""
    config_dir = write_config_dir(tmp_path / "config")
    shutil.copy(PROJECT_ROOT / "examples" / "production" / "model_config.yaml", config_dir / "model_config.yaml")
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    assert config.model.security.require_signed_models
    client = signed.store.client
    assert ModelHolder(config=config, client_factory=lambda: client).refresh().outcome == "refused"
    keyed = ModelHolder(config=config, client_factory=lambda: client, signing_key=KEY)
    assert keyed.refresh().outcome == "loaded" and keyed.served.signed


# ------------------------------------------------------------------ the validation report


def _report_page(signed: Signed) -> Path:
    run = signed.store.client.get_run(_version(signed).run_id)
    return Path(unquote(urlparse(run.info.artifact_uri).path)) / registry.REPORT_DIR / registry.REPORT_PAGE


def test_registration_signs_the_reports_digest(signed: Signed) -> None:
    version = _version(signed)
    digest = version.tags[registry.REPORT_DIGEST_TAG]
    assert version.tags[registry.REPORT_SIGNATURE_TAG] == registry.sign_report_digest(
        KEY, name=NAME, version=signed.version, digest=digest
    )
    assert digest == registry.report_digest(_report_page(signed).parent)
    report = registry.fetch_verified_report(signed.store.client, version, signing_key=KEY)
    assert f"version {signed.version}</h1>" in report.page


def test_a_rewritten_report_with_a_forged_digest_is_refused_when_the_key_is_set(signed: Signed) -> None:
    """A registry writer puts a script into the report and rewrites its digest tag to match: without
    the key nothing can tell; with it the report is refused, as the model would be."""
    client, page = signed.store.client, _report_page(signed)
    original_bytes = page.read_bytes()
    original_tag = _version(signed).tags[registry.REPORT_DIGEST_TAG]
    try:
        page.write_bytes(original_bytes.replace(b"<body>", b"<body><script>alert(1)</script>", 1))
        forged = registry.report_digest(page.parent)
        client.set_model_version_tag(NAME, signed.version, registry.REPORT_DIGEST_TAG, forged)
        registry.fetch_verified_report(client, _version(signed), signing_key=None)  # no key: nothing can tell
        with pytest.raises(registry.UnverifiedArtifactError, match="does not match what was registered"):
            registry.fetch_verified_report(client, _version(signed), signing_key=KEY)
    finally:
        page.write_bytes(original_bytes)
        client.set_model_version_tag(NAME, signed.version, registry.REPORT_DIGEST_TAG, original_tag)


def test_a_models_signature_does_not_pass_for_a_report(signed: Signed) -> None:
    tags = _version(signed).tags
    assert tags[registry.ARTIFACT_SIGNATURE_TAG] != registry.sign_report_digest(
        KEY, name=NAME, version=signed.version, digest=tags[registry.ARTIFACT_DIGEST_TAG]
    ), "the report's signatures have a domain of their own"
