"""The ``review:`` section: defaults for every key, and a bad value refused at start naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_risk.config import ConfigError, load_project_config
from tests.conftest import write_config_dir

pytestmark = pytest.mark.code


def test_the_committed_config_reviews_referrals_in_sqlite_beside_the_log() -> None:
    review = load_project_config().model.review
    assert review.decisions == ("review",) and review.database_url is None
    assert {reason.code for reason in review.reason_codes if reason.adverse} >= {"documents_missing"}


@pytest.mark.parametrize(
    ("review", "message"),
    [
        ({"decisions": ["approve"]}, r"review\.decisions"),
        ({"sla_hours": 0}, r"review\.sla_hours"),
        ({"reason_codes": [{"code": "a", "label": "A"}, {"code": "a", "label": "B"}]}, r"codes must be unique"),
        ({"reason_codes": [{"code": "Not A Code", "label": "x"}]}, r"review\.reason_codes\.0\.code"),
        ({"queue": 1}, r"review\.queue"),
    ],
)
def test_a_bad_review_section_fails_naming_the_key(tmp_path: Path, review: dict, message: str) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"review": review})
    with pytest.raises(ConfigError, match=message):
        load_project_config(config_dir)
