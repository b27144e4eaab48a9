"""Out-of-time validation from training.yaml, and training from production refusing with counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_risk.config import PROJECT_ROOT, ConfigError, load_project_config
from credit_risk.outcomes.training import training_data
from credit_risk.schema import DataValidationError
from pipelines.promote import promote
from pipelines.train import train
from tests.conftest import make_store, write_config_dir

CUTOFF = "2025-10-01"


def dated_copy(tmp: Path, *, bad_rows: int = 0) -> Path:
    """The German Credit file with an application date per row, spread over 2025 in a seeded order."""
    raw = pd.read_csv(PROJECT_ROOT / "data" / "german_credit.csv", dtype=str, keep_default_na=False)
    days = np.random.default_rng(3).permutation(np.arange(len(raw)) * 365 // len(raw))
    raw["application_date"] = (pd.Timestamp("2025-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    raw.loc[: bad_rows - 1, "application_date"] = "someday"
    path = tmp / "dated.csv"
    raw.to_csv(path, index=False)
    return path


def _data(path: Path, **extra: object) -> dict:
    return {
        "training": {"data": {"path": str(path), "holdout_fraction": 0.2, "time_column": "application_date", **extra}}
    }


@pytest.mark.code
def test_the_holdout_is_every_application_from_the_cutoff_on(tmp_path: Path) -> None:
    path = dated_copy(tmp_path)
    store = make_store(tmp_path, **_data(path, cutoff=CUTOFF))
    data = training_data(store.config, store.settings)
    dates = pd.read_csv(path, usecols=["application_date"])["application_date"]
    assert len(data.split.holdout_x) == int((dates >= CUTOFF).sum())
    assert len(data.split.train_x) == int((dates < CUTOFF).sum())
    assert data.tags["holdout_from"].startswith(CUTOFF)


@pytest.mark.code
def test_without_a_cutoff_the_holdout_is_the_latest_fraction(tmp_path: Path) -> None:
    path = dated_copy(tmp_path)
    store = make_store(tmp_path, **_data(path))
    data = training_data(store.config, store.settings)
    share = len(data.split.holdout_x) / (len(data.split.holdout_x) + len(data.split.train_x))
    assert 0.18 <= share <= 0.22, share
    dates = pd.read_csv(path, usecols=["application_date"])["application_date"]
    assert (dates[dates >= data.tags["holdout_from"][:10]]).count() == len(data.split.holdout_x)


@pytest.mark.code
def test_a_cutoff_without_a_time_column_fails_naming_the_key(tmp_path: Path) -> None:
    config_dir = write_config_dir(
        tmp_path / "config", training={"data": {"path": "x.csv", "holdout_fraction": 0.2, "cutoff": CUTOFF}}
    )
    with pytest.raises(ConfigError, match=re.escape("data.cutoff needs data.time_column")):
        load_project_config(config_dir)


@pytest.mark.code
def test_dates_that_do_not_parse_are_refused_naming_the_rows(tmp_path: Path) -> None:
    store = make_store(tmp_path, **_data(dated_copy(tmp_path, bad_rows=2)))
    with pytest.raises(
        DataValidationError, match=r"'application_date': 2 row\(s\) are not ISO dates \(first rows: \[0, 1\]\)"
    ):
        training_data(store.config, store.settings)


@pytest.mark.model
def test_training_and_promotion_judge_on_the_out_of_time_holdout(tmp_path: Path) -> None:
    path = dated_copy(tmp_path)
    store = make_store(tmp_path, **_data(path, cutoff=CUTOFF))
    version = train(store.config, store.settings)
    run = store.client.get_run(version.run_id)
    later = int((pd.read_csv(path, usecols=["application_date"])["application_date"] >= CUTOFF).sum())
    assert run.data.params["n_holdout"] == str(later)
    assert run.data.params["holdout"] == "out_of_time"
    assert version.tags["holdout_from"].startswith(CUTOFF)
    event = promote(store.config, store.settings, reason="first out-of-time model").event
    assert event is not None
    assert event.to_version == str(version.version)
    # the gate figure is the AUC on that same out-of-time holdout
    assert abs(event.figures["challenger_auc"] - float(version.tags["metric.roc_auc"])) < 1e-4


@pytest.mark.code
def test_training_from_production_refuses_with_the_counts(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(store.config.config_dir),
        "CREDIT_RISK_LOG_DIR": str(tmp_path / "logs" / "predictions"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--source", "production"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "too few matured outcomes to train from production" in done.stderr
    assert "0 matured decision(s), 0 with an outcome (0 bad, 0 good); need at least 300 outcomes" in done.stderr
