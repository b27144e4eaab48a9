"""Realized figures on synthetic outcomes with known properties, against scikit-learn where it has them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from credit_risk.config import PerformanceConfig, RiskBand
from pipelines.performance.figures import band_figures, calibration_slope, ranking, version_figures
from pipelines.performance.report import version_alerts

pytestmark = pytest.mark.code

BANDS = (
    RiskBand(name="A", max_probability=0.1),
    RiskBand(name="B", max_probability=0.3),
    RiskBand(name="C", max_probability=1.0),
)


def _columns(p: np.ndarray, y: np.ndarray, *, decided: np.ndarray | None = None) -> dict[str, np.ndarray]:
    band = np.where(p < 0.1, "A", np.where(p < 0.3, "B", "C"))
    decision = np.where(p < 0.3, "approve", "decline")
    label = np.where(decision == "decline", np.nan, y).astype(np.float64) if decided is None else decided
    return {
        "probability": p,
        "risk_band": band,
        "decision": decision,
        "label": label,
        "month": np.full(len(p), "2026-01"),
    }


def test_outcomes_drawn_from_the_probabilities_have_calibration_slope_near_one() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.6, 20_000)
    y = (rng.random(len(p)) < p).astype(int)
    assert calibration_slope(y, p) == pytest.approx(1.0, abs=0.08)
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-2 * logit))  # the same ranking, probabilities spread too far
    assert calibration_slope(y, overconfident) == pytest.approx(0.5, abs=0.06)


def test_figures_count_only_decisions_with_an_outcome_and_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.9, 5000)
    y = (rng.random(len(p)) < p).astype(int)
    figures = version_figures(_columns(p, y), BANDS, {"roc_auc": 0.8})
    known = p < 0.3
    assert figures.decisions == 5000
    assert figures.with_outcome == int(known.sum())
    assert figures.auc == pytest.approx(roc_auc_score(y[known], p[known]))
    assert figures.coverage_by_decision["decline"].with_outcome == 0
    assert figures.approval_rate == pytest.approx(known.mean())
    assert figures.bands[2].with_outcome == 0 and figures.bands[2].observed is None


def test_a_band_whose_bad_rate_leaves_its_range_is_measured_by_how_far() -> None:
    p = np.full(100, 0.2)
    y = np.r_[np.ones(50), np.zeros(50)]  # observed 0.5 in a band of [0.1, 0.3)
    band = band_figures(BANDS, np.full(100, "B"), np.ones(100, bool), y, p)[1]
    assert band.outside_by == pytest.approx(0.2)


def test_alerts_follow_the_configured_floor_drop_and_band_margin() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.29, 2000)
    y = (rng.random(len(p)) < 0.5).astype(int)  # outcomes unrelated to the score: AUC ~0.5, bad rate ~0.5
    figures = version_figures(_columns(p, y), BANDS, {"roc_auc": 0.78})
    config = PerformanceConfig(
        min_auc=0.65, max_auc_drop=0.05, band_margin=0.05, min_outcomes=200, min_band_outcomes=50
    )
    subjects = {a.subject for a in version_alerts("3", figures, config)}
    assert subjects == {"auc", "auc_drop", "band A", "band B"}
    assert version_alerts("3", figures, config.model_copy(update={"min_outcomes": 5000})) == [], "too few outcomes"


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_ks_agree_with_scikit_learn_on_random_scores_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    p = np.round(rng.random(n), int(rng.integers(1, 4)))  # few decimals: many ties
    y = (rng.random(n) < p).astype(int)
    y[:2] = [0, 1]
    figures = ranking(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    assert figures["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert figures["ks"] == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)
    assert figures["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
