"""The validation report: written at registration for every version, with the sections SR 11-7 asks for."""

from __future__ import annotations

import numpy as np
import pytest

from credit_risk import registry
from credit_risk.data import load_split
from pipelines import validation_report
from tests.conftest import TrainedModel

pytestmark = pytest.mark.model

SECTIONS = (
    "Purpose and intended use",
    "Data and lineage",
    "Candidates tried",
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
