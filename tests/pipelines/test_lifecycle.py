"""Train, register, promote, refuse, roll back: against a real SQLite MLflow store."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from credit_risk import lifecycle, registry
from credit_risk.config import PROJECT_ROOT
from credit_risk.scoring import ScoringModel
from pipelines.promote import PromotionRefused, promote
from pipelines.rollback import RollbackRefused, rollback
from pipelines.train import train
from tests.conftest import Store, TrainedModel, make_store, one_version_store, registered_again

pytestmark = pytest.mark.code

# gates no model of the test data passes
STRICT_GATES = {"promotion": {"min_auc": 0.99, "max_auc_drop": 0.02, "min_disparate_impact": 0.8, "max_brier": 0.2}}


def test_training_registers_a_version_with_the_challenger_alias(trained: TrainedModel) -> None:
    store, version = trained.store, trained.version
    name = store.config.model.registry.model_name
    assert str(registry.version_for_alias(store.client, name, "challenger").version) == str(version.version)
    for tag in (
        "artifact_sha256",
        "data_sha256",
        "config_sha256",
        "git_commit",
        "model_kind",
        "metric.roc_auc_cv_mean",
        "metric.roc_auc",
        "metric.brier",
        "metric.expected_cost",
    ):
        assert tag in version.tags, f"version is missing tag {tag}"


def test_training_run_logs_metrics_fairness_and_reports(trained: TrainedModel) -> None:
    run = mlflow.get_run(trained.version.run_id)
    for metric in (
        "roc_auc_cv_mean",
        "roc_auc_cv_std",
        "holdout_roc_auc",
        "holdout_gini",
        "holdout_ks",
        "holdout_accuracy",
        "holdout_brier",
        "holdout_log_loss",
        "holdout_expected_cost",
        "disparate_impact_age_in_years",
        "disparate_impact_personal_status_and_sex",
    ):
        assert metric in run.data.metrics, f"run is missing metric {metric}"
    assert run.data.metrics["holdout_gini"] == pytest.approx(2 * run.data.metrics["holdout_roc_auc"] - 1)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")}
    assert {
        "reports/roc_curve.png",
        "reports/calibration_curve.png",
        "reports/score_distribution.png",
        "reports/feature_importance.png",
        "reports/model_card.md",
    } <= artifacts


def test_candidates_are_nested_runs(trained: TrainedModel) -> None:
    parent = trained.version.run_id
    children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent}'", search_all_experiments=True)
    names = sorted(children["tags.mlflow.runName"])
    assert len(children) == 3, f"one nested run per candidate (LR baseline, one XGBoost) and the benchmark: {names}"
    assert sorted(children["params.kind"]) == ["logistic", "scorecard", "xgboost"]
    assert sum(name.startswith("benchmark scorecard(") for name in names) == 1, "the scorecard ran as the benchmark"


def test_pyfunc_loads_from_the_production_alias_and_predicts(trained: TrainedModel) -> None:
    schema = trained.store.config.features
    model = mlflow.pyfunc.load_model("models:/credit-risk@production")
    assert model.metadata.signature is not None
    assert [c.name for c in model.metadata.signature.inputs] == schema.input_names
    frame = pd.DataFrame([schema.example_record()])[schema.input_names]
    p = model.predict(frame)
    assert p.shape == (1,) and 0 < p[0] < 1


def test_registered_model_has_no_pickle_and_a_matching_digest(trained: TrainedModel, tmp_path: Path) -> None:
    store = trained.store
    local = registry.download_version(store.client, "credit-risk", trained.version.version, tmp_path)
    files = {p.name for p in local.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".cloudpickle"))], files
    assert {"booster.ubj", "model.json", "feature_schema.json", "reference_profile.json"} <= files
    assert registry.directory_digest(local) == trained.version.tags["artifact_sha256"]


def test_model_carries_its_schema_and_reference_profile(trained: TrainedModel, tmp_path: Path) -> None:
    local = registry.download_version(trained.store.client, "credit-risk", trained.version.version, tmp_path)
    model = ScoringModel.load(registry.scoring_dir(local))
    assert model.schema == trained.store.config.features
    profile = model.profile
    assert set(profile["features"]) == {f.name for f in model.schema.fields}
    assert profile["probability"]["shares"] and sum(profile["probability"]["shares"]) == pytest.approx(1.0)


def test_same_data_and_config_give_the_same_metrics(tmp_path: Path) -> None:
    first = make_store(tmp_path / "a")
    second = make_store(tmp_path / "b")
    v1 = train(first.config, first.settings)
    registry.connect(second.settings, PROJECT_ROOT)
    v2 = train(second.config, second.settings)
    keys = [k for k in v1.tags if k.startswith("metric.")]
    assert keys
    assert {k: v1.tags[k] for k in keys} == {k: v2.tags[k] for k in keys}


# ------------------------------------------------------------------ promotion


def test_first_model_is_promoted_when_it_passes_the_absolute_gates(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, version = one_version_store(tmp_path_factory)  # trained, nothing in production yet
    event = promote(store.config, store.settings).event
    assert (event.from_version, event.to_version, event.action) == (None, version, "promote")
    assert (event.state, event.actor) == ("completed", getpass.getuser())  # a job run by hand: the OS user
    assert str(registry.version_for_alias(store.client, "credit-risk", "production").version) == version


def test_promotion_refused_names_the_failed_gate_with_figures(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, _ = one_version_store(tmp_path_factory, model=STRICT_GATES)
    with pytest.raises(PromotionRefused, match=r"min_auc: challenger AUC 0\.\d{4} < 0\.9900"):
        promote(store.config, store.settings)
    assert registry.version_for_alias(store.client, "credit-risk", "production") is None


def test_override_needs_a_reason_and_is_recorded(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, _ = one_version_store(tmp_path_factory, model=STRICT_GATES)
    with pytest.raises(PromotionRefused, match="needs a reason"):
        promote(store.config, store.settings, force=True)
    event = promote(store.config, store.settings, force=True, reason="validation signed off").event
    assert event.action == "promote-override"
    assert event.reason == "validation signed off"
    assert any("min_auc" in gate for gate in event.figures["overridden_gates"])


def test_challenger_much_worse_than_champion_is_refused(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    store, _ = one_version_store(tmp_path_factory)
    promote(store.config, store.settings)
    weak = make_store(
        tmp_path / "weak",
        training={"candidates": {"xgboost": [{"max_depth": 1, "learning_rate": 0.01, "n_estimators": 2}]}},
    )
    # same store, weaker training config: the challenger loses to the champion
    registry.connect(store.settings, PROJECT_ROOT)
    train(weak.config, store.settings)
    with pytest.raises(PromotionRefused, match="max_auc_drop"):
        promote(store.config, store.settings)


def test_rollback_undoes_the_last_move_and_only_returns_to_earlier_holders(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    name = "credit-risk"
    store, first = one_version_store(tmp_path_factory)
    versions = []
    for _ in range(3):  # the alias moves are what is tested: later versions are the first one registered again
        versions.append(registered_again(store, first, challenger=True) if versions else first)
        promote(store.config, store.settings, force=True, reason="test: successive promotions")
    never_held = registered_again(store, first, challenger=True)  # registered, never in production

    def serving() -> str:
        return str(registry.version_for_alias(store.client, name, "production").version)

    assert serving() == versions[2]
    rollback(store.config, store.settings, reason="incident 42")
    assert serving() == versions[1]
    rollback(store.config, store.settings)  # undoes the rollback: back to the version before the last move
    assert serving() == versions[2]
    with pytest.raises(RollbackRefused, match=f"version {never_held} never held 'production'"):
        rollback(store.config, store.settings, version=never_held)
    with pytest.raises(RollbackRefused, match="version 99 of 'credit-risk' does not exist"):
        rollback(store.config, store.settings, version="99")
    rollback(store.config, store.settings, version=versions[0], reason="fixed")
    assert serving() == versions[0]
    history = lifecycle.alias_history(store.client, name)
    assert [e.action for e in history] == ["promote"] * 3 + ["rollback"] * 3
    assert [e.sequence for e in history] == list(range(1, 7))
    assert {e.state for e in history} == {"completed"}
    assert history[3].reason == "incident 42" and history[3].from_version == versions[2]
    assert [(e.from_version, e.to_version) for e in history[3:]] == [
        (versions[2], versions[1]),
        (versions[1], versions[2]),
        (versions[2], versions[0]),
    ]


def test_rollback_of_the_first_promotion_has_nowhere_to_go(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, _ = one_version_store(tmp_path_factory)
    promote(store.config, store.settings, reason="first")
    with pytest.raises(RollbackRefused, match="no earlier 'production' version"):
        rollback(store.config, store.settings)


# ------------------------------------------------------------------ entry points


def _run(args: list[str], store: Store) -> subprocess.CompletedProcess[str]:
    # `mlflow run --env-manager local` runs `python` from PATH: this interpreter's
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_rollback_to_a_version_that_does_not_exist_fails_naming_it(trained: TrainedModel) -> None:
    # the entry points themselves (train, promote, history, rollback) run in their documented
    # forms in tests/documented/test_commands.py
    store = trained.store
    config = ["--config-dir", str(store.settings.config_dir)]
    result = _run([sys.executable, "-m", "pipelines.rollback", *config, "--version", "7", "--reason", "x"], store)
    assert result.returncode == 1 and "version 7 of 'credit-risk' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_data_file_fails_naming_column_rows_and_rule(tmp_path: Path) -> None:
    data = pd.read_csv(PROJECT_ROOT / "data" / "german_credit.csv")
    data.loc[[3, 7, 11], "duration_in_month"] = 0
    bad = tmp_path / "bad.csv"
    data.to_csv(bad, index=False)
    store = make_store(tmp_path, training={"data": {"path": str(bad), "holdout_fraction": 0.2}})
    result = _run([sys.executable, "-m", "pipelines.train", "--config-dir", str(store.settings.config_dir)], store)
    assert result.returncode != 0
    assert "column 'duration_in_month': 3 row(s) break the rule: must be in [1, 120]" in result.stderr
    assert "Traceback" not in result.stderr
