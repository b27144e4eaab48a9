"""The statistics an experiment's comparison needs, on plain arrays (tested against scipy/scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
from scipy import special  # not scipy.stats: a serving process would import it at start, for 0.6 s more

from credit_risk.metrics import roc_auc_and_ks


def wilson(successes: int, total: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sound for small counts and rates near 0 or 1)."""
    if total == 0:
        return (0.0, 1.0)
    z = float(special.ndtri(0.5 + confidence / 2))  # the normal quantile
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def sample_ratio_p_value(observed: list[int], expected_shares: list[float]) -> tuple[float, float]:
    """Chi-square goodness of fit of the arms' counts against the configured shares: (statistic, p)."""
    total = sum(observed)
    if total == 0:
        return (0.0, 1.0)
    counts = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected_shares, dtype=np.float64) * total
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    return (statistic, float(special.chdtrc(len(counts) - 1, statistic)))  # the chi-square upper tail


def psi(expected: np.ndarray, actual: np.ndarray, *, bins: int = 10) -> float | None:
    """Population stability index of ``actual`` against ``expected``, on ``expected``'s deciles."""
    if len(expected) == 0 or len(actual) == 0:
        return None
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC (Mann-Whitney, as the training reports it); None without both classes. Higher ``scores`` = more risk."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    return roc_auc_and_ks(labels == 1, np.asarray(scores, dtype=np.float64))[0]


def bootstrap(
    labels: np.ndarray, scores: np.ndarray, *, rounds: int, seed: int = 20261207
) -> tuple[np.ndarray, np.ndarray]:
    """Resampled (AUC, bad rate) pairs: ``rounds`` draws with replacement (a fixed seed: the same
    data gives the same intervals). An AUC undefined in a draw is NaN."""
    generator = np.random.default_rng(seed)
    aucs = np.full(rounds, np.nan)
    rates = np.empty(rounds)
    n = len(labels)
    for i in range(rounds):
        pick = generator.integers(0, n, n)
        drawn = labels[pick]
        rates[i] = drawn.mean()
        value = auc(drawn, scores[pick])
        if value is not None:
            aucs[i] = value
    return aucs, rates


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float] | None:
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))
