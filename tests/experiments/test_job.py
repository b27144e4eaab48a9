"""``mlflow run . -e experiment``'s job: start (the challenger verified first), report (an MLflow run), stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.experiments.model import list_experiments
from pipelines import experiment as job
from tests.experiments.conftest import TwoModels

pytestmark = pytest.mark.code


@pytest.fixture
def environment(two: TwoModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TwoModels:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", two.store.uri)
    monkeypatch.setenv("CREDIT_RISK_CONFIG_DIR", str(two.store.settings.config_dir))
    monkeypatch.setenv("CREDIT_RISK_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return two


def test_the_job_starts_reports_and_stops_an_experiment_in_the_ledger(environment: TwoModels) -> None:
    two = environment
    name = two.store.config.model.registry.model_name
    started = job.main(
        ["--action", "start", "--version", two.challenger, "--mode", "shadow", "--share", "0.2", "--reason", "cli test"]
    )
    assert started == 0
    running = list_experiments(two.store.client, name)[0]
    assert running.active and running.challenger_version == two.challenger and running.share == 0.2
    assert job.main(["--action", "report"]) == 0
    client = MlflowClient(two.store.uri)
    found = registry.ensure_experiment(client, two.store.config.model.experiments.experiment)
    runs = client.search_runs([found], filter_string=f"tags.experiment_id = '{running.id}'")
    assert runs, "the report is an MLflow run"
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "experiment_report")}
    assert {"experiment_report/report.json", "experiment_report/score_distribution.png"} <= artifacts
    assert job.main(["--action", "stop", "--reason", "cli test done"]) == 0
    assert not list_experiments(two.store.client, name)[0].active


def test_the_job_refuses_a_challenger_that_is_the_served_version(environment: TwoModels, capsys) -> None:
    two = environment
    code = job.main(
        ["--action", "start", "--version", two.champion, "--mode", "split", "--share", "0.1", "--reason", "x"]
    )
    assert code == 1
    assert "is the served version" in capsys.readouterr().err
