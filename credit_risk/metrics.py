"""Holdout metrics and fairness across protected groups: what training reports and the promotion gates check.

Plain numpy and pandas, no plotting: the scoring service's admin route evaluates
the gates with these too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from credit_risk.config import EvaluationConfig, ProjectConfig
from credit_risk.schema import NOT_PROVIDED, FeatureSchema


def classification_metrics(
    y: np.ndarray, p: np.ndarray, *, threshold: float, evaluation: EvaluationConfig
) -> dict[str, float]:
    """ROC-AUC, Gini, KS, accuracy and expected cost at the threshold, Brier, log loss.

    An applicant is declined when P(default) >= threshold. Expected cost is per
    applicant under the cost matrix (bad accepted, good declined). Computed from one
    sort in numpy (scikit-learn's functions give the same figures, checked by the tests,
    at a hundred times the cost: the validation report's bootstrap calls this 300 times).
    """
    bad = np.asarray(y) == 1
    p = np.asarray(p, dtype=np.float64)
    auc, ks = roc_auc_and_ks(bad, p)
    declined = p >= threshold
    false_approve = np.count_nonzero(bad & ~declined)
    false_decline = np.count_nonzero(~bad & declined)
    cost = (evaluation.cost_false_approve * false_approve + evaluation.cost_false_decline * false_decline) / len(p)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "roc_auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks,
        "accuracy": float(np.mean(declined == bad)),
        "brier": float(np.mean((p - bad) ** 2)),
        "log_loss": float(-np.mean(np.where(bad, np.log(clipped), np.log1p(-clipped)))),
        "expected_cost": float(cost),
        "approval_rate": float(np.mean(~declined)),
    }


def roc_auc_and_ks(bad: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC-AUC (the Mann-Whitney statistic: ties count a half) and KS (the largest gap between the
    cumulative shares of bads and goods at or above a cut-off), from the scores sorted once."""
    if len(p) != len(bad) or not np.all(np.isfinite(p)):
        raise ValueError(f"{len(p)} probabilities for {len(bad)} outcomes, or one is not a finite number")
    positives = int(np.count_nonzero(bad))
    negatives = len(bad) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
    order = np.argsort(-p, kind="stable")
    ranked, hits = p[order], bad[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the end of each run of equal scores
    true_positive = np.cumsum(hits)[last_of_tie]
    false_positive = (last_of_tie + 1) - true_positive
    tpr = np.r_[0.0, true_positive / positives]
    fpr = np.r_[0.0, false_positive / negatives]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)  # the trapezoids under the curve
    return auc, float(np.max(tpr - fpr))


def protected_groups(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """One column per protected attribute: categories as they are, numbers cut at the field's ``group_edges``.

    A missing value is its own group ("not provided")."""
    groups = pd.DataFrame(index=frame.index)
    for spec in schema.protected_fields:
        if spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if spec.is_numeric:
            edges = [-np.inf, *(spec.group_edges or ()), np.inf]
            cut = pd.cut(pd.to_numeric(column), bins=edges, right=False, labels=spec.group_labels())
            groups[spec.name] = cut.astype(object).where(cut.notna(), NOT_PROVIDED).astype(str)
        else:
            groups[spec.name] = column.astype(object).where(column.notna(), NOT_PROVIDED).astype(str)
    return groups


def disparate_impact(groups: pd.DataFrame, approved: np.ndarray, *, min_group_size: int) -> dict[str, Any]:
    """Per protected attribute: each group's approval rate and the disparate impact ratio.

    The ratio is the lowest group approval rate over the highest, among groups
    with at least ``min_group_size`` applicants; smaller groups are reported only.
    """
    report: dict[str, Any] = {}
    approved = np.asarray(approved, dtype=bool)
    for attribute in groups.columns:
        table = pd.DataFrame({"group": groups[attribute].to_numpy(), "approved": approved})
        stats = table.groupby("group")["approved"].agg(["size", "mean"])
        gated = stats[stats["size"] >= min_group_size]
        top = gated["mean"].max() if len(gated) else np.nan
        ratio = float(gated["mean"].min() / top) if len(gated) > 1 and top > 0 else 1.0
        report[attribute] = {
            "disparate_impact": ratio,
            "groups": {
                str(g): {"n": int(row["size"]), "approval_rate": float(row["mean"])} for g, row in stats.iterrows()
            },
        }
    return report


def evaluate_predictions(
    p: np.ndarray, frame: pd.DataFrame, y: np.ndarray, config: ProjectConfig
) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics at the approve threshold, and disparate impact on the configured favourable outcome."""
    decision, evaluation = config.model.decision, config.training.evaluation
    metrics = classification_metrics(y, p, threshold=decision.approve_below, evaluation=evaluation)
    cutoff = decision.decline_at_or_above if evaluation.favourable_outcome == "not_declined" else decision.approve_below
    groups = protected_groups(frame, config.features)
    fairness = disparate_impact(groups, np.asarray(p) < cutoff, min_group_size=evaluation.min_group_size)
    return metrics, fairness


def min_disparate_impact(report: dict[str, Any]) -> float:
    return min((entry["disparate_impact"] for entry in report.values()), default=1.0)
