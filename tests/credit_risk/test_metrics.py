"""The holdout metrics are scikit-learn's figures, computed from one sort."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from credit_risk.config import EvaluationConfig
from credit_risk.metrics import classification_metrics

EVALUATION = EvaluationConfig(cost_false_approve=5.0, cost_false_decline=1.0)


def _sklearn(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    fpr, tpr, _ = roc_curve(y, p)
    declined = p >= threshold
    auc = roc_auc_score(y, p)
    cost = (5.0 * np.sum((y == 1) & ~declined) + 1.0 * np.sum((y == 0) & declined)) / len(y)
    return {
        "roc_auc": auc,
        "gini": 2 * auc - 1,
        "ks": np.max(tpr - fpr),
        "accuracy": np.mean(declined == (y == 1)),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)),
        "expected_cost": cost,
        "approval_rate": np.mean(~declined),
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rows", [7, 60, 1000])
def test_every_figure_is_scikit_learns(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    y[:2] = (0, 1)
    p = rng.random(rows)
    if seed % 2:  # scores with ties (a scorecard's points, a shallow tree's leaves), certainties at 0 and 1
        p = np.round(p * 8) / 8
    ours = classification_metrics(y, p, threshold=0.4, evaluation=EVALUATION)
    theirs = _sklearn(y, p, 0.4)
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-12), name


def test_one_class_and_mismatched_inputs_are_refused_as_scikit_learn_refuses_them() -> None:
    with pytest.raises(ValueError, match="Only one class"):
        classification_metrics(np.zeros(5), np.linspace(0, 1, 5), threshold=0.5, evaluation=EVALUATION)
    with pytest.raises(ValueError, match="not a finite number"):
        classification_metrics(np.array([0, 1]), np.array([0.1, np.nan]), threshold=0.5, evaluation=EVALUATION)
    with pytest.raises(ValueError, match="3 probabilities for 2 outcomes"):
        classification_metrics(np.array([0, 1]), np.array([0.1, 0.2, 0.3]), threshold=0.5, evaluation=EVALUATION)
