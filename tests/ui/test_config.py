"""The ``ui:`` section of config/model_config.yaml: bad values fail with the key named, on the page too."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from credit_risk.config import ConfigError, load_project_config
from tests.conftest import write_config_dir
from tests.ui.conftest import APP

pytestmark = pytest.mark.code


def test_the_project_ui_config_loads() -> None:
    ui = load_project_config().model.ui
    assert ui.api_url.startswith("http") and ui.batch_chunk_size >= 1


def test_a_zero_chunk_size_is_refused_naming_the_key(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"ui": {"api_url": "http://x", "batch_chunk_size": 0}})
    with pytest.raises(ConfigError, match=r"ui\.batch_chunk_size"):
        load_project_config(config_dir)


def test_the_app_shows_a_bad_config_instead_of_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"ui": {"api_url": "http://x", "timeout": 3}})
    monkeypatch.setenv("CREDIT_RISK_CONFIG_DIR", str(config_dir))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert any("configuration is invalid" in e.value and "ui.timeout" in e.value for e in at.error), [
        e.value for e in at.error
    ]
