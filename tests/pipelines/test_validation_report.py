"""The validation report: written at registration for every version, with the sections SR 11-7 asks for."""

from __future__ import annotations

import numpy as np
import pytest

from credit_risk import registry
from credit_risk.data import load_split
from pipelines import validation_report
from tests.conftest import Store, TrainedModel

pytestmark = pytest.mark.model

SECTIONS = (
    "Purpose and intended use",
    "Data and lineage",
    "Candidates tried",
    "Benchmark: a points scorecard",
    "bootstrap intervals",
    "Calibration",
    "Fairness by protected group",
    "Stability between training and holdout (PSI)",
    "Gate results at registration",
    "Known limitations",
)


def test_every_registered_version_has_a_validation_report(trained: TrainedModel) -> None:
    client = trained.store.client
    versions = registry.list_versions(client, trained.store.config.model.registry.model_name)
    assert versions
    for version in versions:
        path = version.tags.get(registry.VALIDATION_REPORT_TAG)
        assert path == validation_report.REPORT_PATH, version.version
        page = registry.fetch_verified_report(client, version, signing_key=None).page
        for section in SECTIONS:
            assert section in page, (version.version, section)
        assert version.tags[registry.ARTIFACT_DIGEST_TAG] in page
        assert version.tags["data_sha256"] in page


def test_the_report_figures_match_the_version_and_hold_their_intervals(trained: TrainedModel) -> None:
    client = trained.store.client
    version = registry.get_version(client, trained.version.name, trained.version.version)  # tagged since
    facts = registry.fetch_verified_report(client, version, signing_key=None).data
    auc = facts["intervals"]["roc_auc"]
    assert auc["low"] <= auc["value"] <= auc["high"]
    assert auc["value"] == pytest.approx(float(version.tags["metric.roc_auc"]), abs=1e-6)
    assert len(facts["candidates"]) == 2
    assert sum(row[-1] == "yes" for row in facts["candidates"]) == 1
    assert set(facts["psi"]) == {*(f.name for f in trained.store.config.features.fields), "probability"}
    assert {gate["gate"] for gate in facts["gates"]} == {"min_auc", "max_brier", "min_disparate_impact"}


def test_the_report_sets_a_scorecard_benchmark_beside_a_chosen_model_that_is_not_one(trained: TrainedModel) -> None:
    client = trained.store.client
    version = registry.get_version(client, trained.version.name, trained.version.version)
    facts = registry.fetch_verified_report(client, version, signing_key=None).data
    assert version.tags["model_kind"] != "scorecard"
    chosen, benchmark = facts["benchmark"]
    assert chosen[1] == "chosen" and chosen[2] == pytest.approx(float(version.tags["metric.roc_auc_cv_mean"]), abs=1e-6)
    assert benchmark[0].startswith("scorecard(") and benchmark[1] == "benchmark only (not a candidate)"
    assert benchmark[2] == pytest.approx(float(version.tags["metric.scorecard_roc_auc_cv_mean"]), abs=1e-6)
    assert 0.6 < benchmark[2] < 0.85, "a scorecard's CV ROC-AUC on German Credit"
    assert facts["points_table"] is None


def test_a_version_trained_without_the_benchmark_says_so_in_its_report(store: Store) -> None:
    from pipelines.train import train

    assert store.config.training.scorecard_benchmark is False  # the tests' fast training turns it off
    trained = train(store.config, store.settings)
    version = registry.get_version(store.client, trained.name, trained.version)
    report = registry.fetch_verified_report(store.client, version, signing_key=None)
    assert [row[1] for row in report.data["benchmark"]] == ["chosen"]
    assert "metric.scorecard_roc_auc_cv_mean" not in version.tags
    assert "No benchmark scorecard was cross-validated for this version" in report.page


def test_a_chosen_scorecards_report_holds_its_points_table(scorecard_trained: TrainedModel) -> None:
    client = scorecard_trained.store.client
    version = registry.get_version(client, scorecard_trained.version.name, scorecard_trained.version.version)
    report = registry.fetch_verified_report(client, version, signing_key=None)
    assert [row[1] for row in report.data["benchmark"]] == ["chosen"], "the scorecard is its own benchmark"
    rows = report.data["points_table"]
    assert rows and {row[0] for row in rows} == {f.label for f in scorecard_trained.store.config.features.inputs}
    assert "The points table of this scorecard" in report.page


def test_bootstrap_intervals_narrow_as_the_sample_grows(trained: TrainedModel) -> None:
    config = trained.store.config
    split = load_split(config)
    rng = np.random.default_rng(0)
    y_small = rng.integers(0, 2, 100)
    p_small = np.clip(y_small * 0.3 + rng.random(100) * 0.6, 0, 1)
    y_big = np.tile(y_small, 10)
    p_big = np.tile(p_small, 10)
    small = validation_report.bootstrap_intervals(y_small, p_small, config, rounds=200)["roc_auc"]
    big = validation_report.bootstrap_intervals(y_big, p_big, config, rounds=200)["roc_auc"]
    assert big["high"] - big["low"] < small["high"] - small["low"]
    assert len(split.holdout_x) > 0
