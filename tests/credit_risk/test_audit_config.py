"""The notices: and audit: sections of model_config.yaml: read into typed models, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from credit_risk.config import DEFAULT_CONFIG_DIR, ConfigError, Settings, load_project_config
from serving.api.deps import role_tokens

pytestmark = pytest.mark.code


def _config_with(tmp_path: Path, change) -> Path:
    target = tmp_path / "config"
    target.mkdir()
    for path in DEFAULT_CONFIG_DIR.glob("*.yaml"):
        (target / path.name).write_text(path.read_text())
    data = yaml.safe_load((target / "model_config.yaml").read_text())
    change(data)
    (target / "model_config.yaml").write_text(yaml.safe_dump(data))
    return target


def test_the_shipped_notices_name_a_lender_an_agency_and_at_most_four_reasons() -> None:
    notices = load_project_config().model.notices
    assert notices.lender.name and notices.lender.address and notices.agency.name
    assert notices.max_reasons <= 4
    assert "Equal Credit Opportunity Act" in notices.ecoa_notice


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["notices"].update(lender={"name": "No Address Ltd."}), r"notices\.lender\.address"),
        (lambda d: d.setdefault("notices", {}).update(max_reasons=5), r"notices\.max_reasons"),
        (lambda d: d.setdefault("notices", {}).update(decisions=["approve"]), r"notices\.decisions"),
        (lambda d: d.setdefault("audit", {}).update(page_size=0), r"audit\.page_size"),
        (lambda d: d.setdefault("audit", {}).update(unknown=1), r"audit\.unknown"),
    ],
)
def test_a_bad_notices_or_audit_value_fails_naming_the_key(tmp_path: Path, change, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_project_config(_config_with(tmp_path, change))


def test_role_tokens_take_their_names_from_the_environment_or_the_value() -> None:
    settings = Settings(
        CREDIT_RISK_ADMIN_TOKEN="ops-alice:secret-1",
        CREDIT_RISK_AUDITOR_TOKEN="secret:2",
        CREDIT_RISK_AUDITOR_TOKEN_NAME="audit-bob",
    )
    tokens = {(t.role, t.name, t.token) for t in role_tokens(settings)}
    assert tokens == {("admin", "ops-alice", "secret-1"), ("auditor", "audit-bob", "secret:2")}
    assert [(t.role, t.name) for t in role_tokens(Settings(CREDIT_RISK_ADMIN_TOKEN="plain"))] == [("admin", "admin")]
