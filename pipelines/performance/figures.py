"""Realized figures of one model version from its matured decisions and their outcomes.

Plain numpy on whole arrays (the ROC curve too, checked against scikit-learn's in the tests): the join
hands over columns, these functions return the typed pieces of :class:`credit_risk.performance.VersionPerformance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from credit_risk.config import RiskBand
from credit_risk.decision import DECISIONS
from credit_risk.performance import BandFigures, CalibrationBin, Coverage, Curve, VersionPerformance, Vintage

_EPS = 1e-6
_ROC_POINTS = 200


def _rate(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve's points (false and true positive rates), ties in p taken together as scikit-learn does."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tps = np.cumsum(y_sorted)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def ranking(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC, Gini, KS and Brier; None when the outcomes hold only one class."""
    brier = float(np.mean((p - y) ** 2)) if len(y) else None
    if len(y) < 2 or y.min() == y.max():
        return {"auc": None, "gini": None, "ks": None, "brier": brier}
    fpr, tpr = roc(y, p)
    auc = float(np.trapezoid(tpr, fpr))
    return {"auc": auc, "gini": 2 * auc - 1, "ks": float(np.max(tpr - fpr)), "brier": brier}


def roc_points(y: np.ndarray, p: np.ndarray) -> Curve | None:
    if len(y) < 2 or y.min() == y.max():
        return None
    fpr, tpr = roc(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), _ROC_POINTS)).astype(int))
    return Curve(fpr=[round(float(v), 5) for v in fpr[keep]], tpr=[round(float(v), 5) for v in tpr[keep]])


def calibration_slope(y: np.ndarray, p: np.ndarray, iterations: int = 50) -> float | None:
    """The slope b of logit P(bad) = a + b * logit(p), by Newton's method (1 = well calibrated in spread)."""
    if len(y) < 10 or y.min() == y.max():
        return None
    p = np.clip(p, _EPS, 1 - _EPS)
    x = np.column_stack([np.ones_like(p), np.log(p / (1 - p))])
    beta = np.array([0.0, 1.0])
    for _ in range(iterations):
        mu = 1 / (1 + np.exp(-(x @ beta)))
        w = np.clip(mu * (1 - mu), 1e-9, None)
        step = np.linalg.solve((x * w[:, None]).T @ x + 1e-9 * np.eye(2), x.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[1]) if np.isfinite(beta[1]) else None


def deciles(y: np.ndarray, p: np.ndarray) -> list[CalibrationBin]:
    """Predicted against observed bad rate in ten groups of equal size, by predicted risk."""
    if len(y) < 10:
        return []
    order = np.argsort(p, kind="stable")
    return [
        CalibrationBin(bin=i + 1, n=len(idx), predicted=float(p[idx].mean()), observed=float(y[idx].mean()))
        for i, idx in enumerate(np.array_split(order, 10))
    ]


def band_figures(
    bands: Sequence[RiskBand], band: np.ndarray, has: np.ndarray, y: np.ndarray, p: np.ndarray
) -> list[BandFigures]:
    """Per configured band: predicted range, decisions, outcomes, mean predicted and observed bad rate."""
    out, low = [], 0.0
    for spec in bands:
        in_band = band == spec.name
        with_outcome = in_band & has
        observed = _rate(y[with_outcome])
        outside = None
        if observed is not None:
            outside = max(low - observed, observed - spec.max_probability, 0.0)
        out.append(
            BandFigures(
                band=spec.name,
                min_probability=low,
                max_probability=spec.max_probability,
                decisions=int(in_band.sum()),
                with_outcome=int(with_outcome.sum()),
                predicted=_rate(p[with_outcome]),
                observed=observed,
                outside_by=outside,
            )
        )
        low = spec.max_probability
    return out


def coverage(decision: np.ndarray, has: np.ndarray, y: np.ndarray) -> dict[str, Coverage]:
    out = {}
    for kind in (*DECISIONS, *sorted(set(pd.unique(decision).tolist()) - set(DECISIONS))):
        mine = decision == kind
        n, k = int(mine.sum()), int((mine & has).sum())
        out[str(kind)] = Coverage(
            decisions=n, with_outcome=k, share_with_outcome=k / n if n else None, bad_rate=_rate(y[mine & has])
        )
    return out


def vintages(
    month: np.ndarray, band: np.ndarray, has: np.ndarray, y: np.ndarray, p: np.ndarray, bands: Sequence[RiskBand]
) -> list[Vintage]:
    """Per decision month: volume, outcomes, bad rate, AUC and bad rate per band."""
    out = []
    for value in sorted(pd.unique(month).tolist()):
        mine = month == value
        known = mine & has
        out.append(
            Vintage(
                month=str(value),
                decisions=int(mine.sum()),
                with_outcome=int(known.sum()),
                bad_rate=_rate(y[known]),
                auc=ranking(y[known], p[known])["auc"],
                bad_rate_by_band={spec.name: _rate(y[known & (band == spec.name)]) for spec in bands},
            )
        )
    return out


def version_figures(
    columns: Mapping[str, np.ndarray], bands: Sequence[RiskBand], holdout: Mapping[str, float]
) -> VersionPerformance:
    """Every realized figure of one version; ``columns``: probability, risk_band, decision, label
    (NaN: no outcome), month."""
    p = columns["probability"].astype(np.float64)
    label = columns["label"].astype(np.float64)
    has = ~np.isnan(label)
    y, py = label[has].astype(np.int64), p[has]
    decision, band = columns["decision"], columns["risk_band"]
    n, k = len(p), int(has.sum())
    figures = ranking(y, py)
    mean_predicted, observed = _rate(py), _rate(y.astype(np.float64))
    return VersionPerformance(
        decisions=n,
        with_outcome=k,
        share_with_outcome=k / n if n else None,
        coverage_by_decision=coverage(decision, has, label),
        approval_rate=_rate((decision == "approve").astype(np.float64)),
        bad_rate=observed,
        **figures,
        mean_predicted=mean_predicted,
        calibration_in_the_large=None if observed is None else observed - mean_predicted,
        calibration_slope=calibration_slope(y, py),
        bands=band_figures(bands, band, has, label, p),
        deciles=deciles(y, py),
        vintages=vintages(columns["month"], band, has, label, p, bands),
        holdout=dict(holdout),
        roc=roc_points(y, py),
    )
