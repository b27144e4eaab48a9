"""The comparison's statistics against the libraries they stand in for, on random data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from credit_risk.experiments import stats

pytestmark = pytest.mark.code


@pytest.mark.parametrize("seed", range(5))
def test_auc_by_ranks_equals_scikit_learns_with_ties(seed: int) -> None:
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, 500)
    scores = np.round(generator.random(500) + 0.3 * labels, 1)  # rounded: many ties
    assert stats.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_is_undefined_with_one_class() -> None:
    assert stats.auc(np.zeros(10, dtype=int), np.arange(10.0)) is None


@pytest.mark.parametrize(("successes", "total"), [(0, 20), (3, 20), (50, 100), (990, 1000)])
def test_the_wilson_interval_holds_the_rate_and_stays_in_zero_one(successes: int, total: int) -> None:
    low, high = stats.wilson(successes, total, 0.95)
    assert 0.0 <= low <= successes / total <= high <= 1.0


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    generator = np.random.default_rng(1)
    scores = generator.normal(600, 40, 5000)
    assert stats.psi(scores, scores) == pytest.approx(0.0, abs=1e-9)
    assert stats.psi(scores, scores + 60) > 0.25


def test_the_bootstrap_gives_the_same_intervals_for_the_same_data() -> None:
    generator = np.random.default_rng(2)
    labels = generator.integers(0, 2, 300)
    scores = generator.random(300) + 0.2 * labels
    first = stats.bootstrap(labels, scores, rounds=100)
    second = stats.bootstrap(labels, scores, rounds=100)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
