"""The drift monitor against the session model: synthetic traffic scored, logged, monitored."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, PredictionLogConfig
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.scoring import ScoringModel
from pipelines.monitor import EXIT_ALERT, monitor
from pipelines.synthetic import generate_applicants
from serving.monitoring import summary_path_for
from serving.prediction_log import PredictionLogWriter

pytestmark = pytest.mark.model

ROWS = 2000


def scored_records(trained, frame, *, version: str, when: datetime, work: Path) -> list[dict[str, Any]]:
    """Score applicants with the registered version and build the records the service would log."""
    store = trained.store
    folder = registry.download_version(store.client, store.config.model.registry.model_name, version, work)
    model = ScoringModel.load(registry.scoring_dir(folder))
    engine = DecisionEngine(model, store.config.model)
    applicants = frame.to_dict("records")
    probabilities = model.predict_proba(model.encoder.encode_frame(frame))
    scores, bands, decisions = (
        engine.scores(probabilities),
        engine.bands(probabilities),
        engine.decisions(probabilities),
    )
    return [
        {
            **applicant,
            "request_id": f"req-{i}",
            "batch_id": None,
            "scored_at": when + timedelta(seconds=i),
            "model_name": store.config.model.registry.model_name,
            "model_version": version,
            "probability": float(probabilities[i]),
            "score": int(scores[i]),
            "risk_band": bands[i],
            "decision": decisions[i],
            "decision_policy_version": store.config.model.decision.policy_version,
            "reasons": ["DUR"],
            "latency_ms": 2.0 + (i % 50) / 10,
        }
        for i, applicant in enumerate(applicants)
    ]


def write_log(trained, log_dir: Path, *, shift: dict | None = None, seed: int = 1) -> None:
    config = trained.store.config
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=ROWS, seed=seed, shift=shift)
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    records = scored_records(trained, frame, version=str(trained.version.version), when=when, work=log_dir.parent)
    writer = PredictionLogWriter(PredictionLogConfig(), directory=log_dir, schema=config.features, client_factory=None)
    writer.start()
    writer.submit(records)
    writer.close(timeout=30)


@pytest.fixture(scope="module")
def unshifted(trained, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    log_dir = tmp_path_factory.mktemp("unshifted") / "predictions"
    write_log(trained, log_dir)
    return log_dir, monitor(trained.store.config, trained.store.settings, log_dir=log_dir)


def test_an_unshifted_population_passes(unshifted) -> None:
    _, summary = unshifted
    assert summary["status"] == "ok", summary["alerts"]
    assert summary["exit_code"] == 0
    assert summary["volume"] == ROWS
    assert summary["psi"]["probability"]["psi"] < 0.1


def test_the_summary_holds_health_figures_and_a_time_series(unshifted) -> None:
    _, summary = unshifted
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]
    assert sum(summary["decision_counts"].values()) == ROWS
    assert abs(sum(summary["decision_rates"].values()) - 1) < 1e-9
    assert {p["volume"] for p in summary["time_series"]["points"]} and summary["time_series"]["bucket"] == "day"
    assert sum(p["volume"] for p in summary["time_series"]["points"]) == ROWS
    scored = [name for name, entry in summary["psi"]["features"].items() if entry["status"] == "scored"]
    assert len(scored) == len(summary["psi"]["features"]) == 20
    assert set(summary["fairness"]) == {"personal_status_and_sex", "age_in_years", "foreign_worker"}


def test_the_latest_summary_is_written_where_the_api_reads_it(trained, unshifted) -> None:
    log_dir, summary = unshifted
    path = summary_path_for(trained.store.config, log_dir)
    assert path == log_dir.parent / "monitoring" / "latest.json"
    assert json.loads(path.read_text())["mlflow_run_id"] == summary["mlflow_run_id"]


def test_the_drift_report_is_logged_to_an_mlflow_run(trained, unshifted) -> None:
    _, summary = unshifted
    client = trained.store.client
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["volume"] == ROWS
    assert "psi_probability" in run.data.metrics and "psi_credit_amount" in run.data.metrics
    assert run.data.tags["model_version"] == str(trained.version.version)
    artifacts = set(registry.list_artifact_paths(client, run.info.run_id, "drift_report"))
    assert artifacts == {
        f"drift_report/{name}"
        for name in ("drift_report.md", "summary.json", "score_distribution.png", "psi_by_feature.png")
    }


def test_a_shifted_feature_is_flagged_and_the_job_exits_non_zero(trained, tmp_path: Path) -> None:
    log_dir = tmp_path / "predictions"
    write_log(trained, log_dir, shift={"duration_in_month": 2.0})
    store = trained.store
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(store.config.config_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.monitor", "--log-dir", str(log_dir)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_ALERT, done.stderr[-3000:]
    summary = json.loads((tmp_path / "monitoring" / "latest.json").read_text())
    flagged = {(a["subject"], a["level"]) for a in summary["alerts"]}
    assert ("duration_in_month", "major") in flagged
    assert summary["status"] == "alert"
    assert "duration_in_month" in done.stderr


def test_an_empty_window_reports_no_data_and_passes(trained, tmp_path: Path) -> None:
    summary = monitor(trained.store.config, trained.store.settings, log_dir=tmp_path / "nothing-logged")
    assert summary["status"] == "no_data"
    assert summary["volume"] == 0
    assert summary["exit_code"] == 0


def duplicate_every_file(log_dir: Path, target: Path) -> Path:
    """The log as an older release could leave it with two instances on one directory: every decision twice."""
    shutil.copytree(log_dir, target)
    for path in list(target.glob("date=*/part-*.parquet")):
        shutil.copy(path, path.with_name(path.name.replace("part-", "part-copy_", 1)))
    return target


def test_a_log_holding_duplicates_counts_each_decision_once_and_reports_the_dropped(
    trained, unshifted, tmp_path: Path
) -> None:
    log_dir = duplicate_every_file(unshifted[0], tmp_path / "predictions")
    summary = monitor(trained.store.config, trained.store.settings, log_dir=log_dir)
    assert summary["volume"] == ROWS, "each decision counted once"
    assert sum(summary["decision_counts"].values()) == ROWS
    assert summary["duplicates_dropped"] == ROWS
    assert unshifted[1]["duplicates_dropped"] == 0
