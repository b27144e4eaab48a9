"""The service's start pauses Python's garbage collector and always turns it on again."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from credit_risk.config import ConfigError, Settings
from serving.app import create_app
from serving.lifespan import _collector_paused
from tests.conftest import TrainedModel
from tests.serving.conftest import LOOPBACK, app_client

pytestmark = pytest.mark.code


def test_the_collector_is_off_inside_the_pause_and_on_after_it_even_when_the_start_fails() -> None:
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("the start failed")
    assert gc.isenabled(), "a failed start left the collector off"


def test_a_collector_someone_else_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the pause turned on a collector it had not turned off"
    finally:
        gc.enable()


def test_after_a_start_and_after_a_refused_start_the_collector_is_on(trained: TrainedModel, tmp_path: Path) -> None:
    with app_client(trained.store, tmp_path / "log") as client:
        assert gc.isenabled()
        assert client.get("/ready").status_code == 200
    same = "the-same-token-0123456789"
    settings = Settings(
        MLFLOW_TRACKING_URI=trained.store.uri,
        CREDIT_RISK_CONFIG_DIR=trained.store.settings.config_dir,
        CREDIT_RISK_LOG_DIR=tmp_path / "refused-log",
        CREDIT_RISK_ADMIN_TOKEN=same,
        CREDIT_RISK_AUDITOR_TOKEN=same,
    )
    with (
        pytest.raises(ConfigError, match="same token"),
        TestClient(create_app(trained.store.config, settings), base_url=LOOPBACK),
    ):
        pass
    assert gc.isenabled(), "the refused start left the collector off"
