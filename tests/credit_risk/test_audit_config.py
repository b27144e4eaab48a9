"""The notices: and audit: sections of model_config.yaml: read into typed models, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from credit_risk.config import DEFAULT_CONFIG_DIR, ConfigError, Settings, load_project_config
from credit_risk.roles import grants, role_tokens

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


def test_role_tokens_take_their_names_from_the_environment_and_keep_a_colon_in_the_secret() -> None:
    settings = Settings(
        CREDIT_RISK_ADMIN_TOKEN="ops-alice:secret-0123456789",
        CREDIT_RISK_AUDITOR_TOKEN="secret:2-0123456789abc",
        CREDIT_RISK_AUDITOR_TOKEN_NAME="audit-bob",
        CREDIT_RISK_REVIEWER_TOKEN="reviewer-token-0123456789",
    )
    tokens = {(t.role, t.name, t.token) for t in role_tokens(settings)}
    assert tokens == {
        ("admin", "admin", "ops-alice:secret-0123456789"),
        ("auditor", "audit-bob", "secret:2-0123456789abc"),
        ("reviewer", "reviewer", "reviewer-token-0123456789"),
    }, "a name:token value is no longer split: the name comes from *_TOKEN_NAME only"


@pytest.mark.parametrize(
    "variable",
    [
        "CREDIT_RISK_ADMIN_TOKEN",
        "CREDIT_RISK_AUDITOR_TOKEN",
        "CREDIT_RISK_REVIEWER_TOKEN",
        "CREDIT_RISK_APPROVER_TOKEN",
        "CREDIT_RISK_LOG_HASH_KEY",
        "CREDIT_RISK_MODEL_SIGNING_KEY",
    ],
)
def test_a_token_or_key_shorter_than_16_characters_is_refused_at_start_naming_it(variable: str) -> None:
    with pytest.raises(ValueError, match=variable) as raised:
        Settings(**{variable: "short-secret"})
    assert "short-secret" not in str(raised.value), "the refusal must not print the secret"
    Settings(**{variable: "long-enough-secret-0123"})  # 16 or more: accepted


def test_two_roles_with_the_same_token_or_a_bad_name_are_refused() -> None:
    same = Settings(CREDIT_RISK_ADMIN_TOKEN="same-token-0123456789", CREDIT_RISK_AUDITOR_TOKEN="same-token-0123456789")
    with pytest.raises(ConfigError, match="same token"):
        role_tokens(same)
    badly_named = Settings(CREDIT_RISK_ADMIN_TOKEN="admin-token-0123456789", CREDIT_RISK_ADMIN_TOKEN_NAME="a b")
    with pytest.raises(ConfigError, match="CREDIT_RISK_ADMIN_TOKEN_NAME"):
        role_tokens(badly_named)


def test_permissions_are_a_table_not_a_ladder() -> None:
    assert grants("admin", "reviewer") and grants("admin", "auditor")
    assert not grants("admin", "approver"), "the admin who asks for a promotion cannot also approve it"
    assert not grants("reviewer", "auditor") and not grants("approver", "admin")
