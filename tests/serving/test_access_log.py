"""``serving.access_log: true``: one JSON line per request, written off the request path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TrainedModel
from tests.serving.conftest import app_client

pytestmark = pytest.mark.code


def test_access_log_writes_one_json_line_per_request(
    trained: TrainedModel, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    applicant = trained.store.config.features.example_record()
    with app_client(trained.store, tmp_path, access_log=True) as client:
        capfd.readouterr()
        assert client.post("/v1/predict", json=applicant).status_code == 200
        assert client.post("/v1/predict", json={"duration_in_months": "x"}).status_code == 422
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith('{"ts"')]
    predicts = [line for line in lines if line["path"] == "/v1/predict"]
    assert [line["status"] for line in predicts] == [200, 422], lines
    assert all(line["method"] == "POST" and line["ms"] > 0 for line in predicts), predicts


def test_access_log_is_off_by_default(trained: TrainedModel, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with app_client(trained.store, tmp_path) as client:
        capfd.readouterr()
        assert client.get("/health").status_code == 200
    assert '{"ts"' not in capfd.readouterr().err
