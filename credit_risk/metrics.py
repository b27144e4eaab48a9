"""Holdout metrics and fairness across protected groups: what training reports and the promotion gates check.

Plain numpy, pandas and scikit-learn metrics, no plotting: the scoring
service's admin route evaluates the gates with these too.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from credit_risk.config import EvaluationConfig, ProjectConfig
from credit_risk.schema import FeatureSchema


def classification_metrics(
    y: np.ndarray, p: np.ndarray, *, threshold: float, evaluation: EvaluationConfig
) -> dict[str, float]:
    """ROC-AUC, Gini, KS, accuracy and expected cost at the threshold, Brier, log loss.

    An applicant is declined when P(default) >= threshold. Expected cost is per
    applicant under the cost matrix (bad accepted, good declined).
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    auc = float(roc_auc_score(y, p))
    fpr, tpr, _ = roc_curve(y, p)
    declined = p >= threshold
    false_approve = np.sum((y == 1) & ~declined)
    false_decline = np.sum((y == 0) & declined)
    cost = (evaluation.cost_false_approve * false_approve + evaluation.cost_false_decline * false_decline) / len(y)
    return {
        "roc_auc": auc,
        "gini": 2 * auc - 1,
        "ks": float(np.max(tpr - fpr)),
        "accuracy": float(np.mean(declined == (y == 1))),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15))),
        "expected_cost": float(cost),
        "approval_rate": float(np.mean(~declined)),
    }


def protected_groups(frame: pd.DataFrame, schema: FeatureSchema, evaluation: EvaluationConfig) -> pd.DataFrame:
    """One column per protected attribute, ages cut into the configured groups."""
    groups = pd.DataFrame(index=frame.index)
    for spec in schema.protected_fields:
        if spec.name not in frame.columns:
            continue
        if spec.type == "integer":
            edges = [-np.inf, *evaluation.age_group_edges, np.inf]
            labels = [f"under {evaluation.age_group_edges[0]}"]
            labels += [f"{lo} to {hi - 1}" for lo, hi in itertools.pairwise(evaluation.age_group_edges)]
            labels += [f"{evaluation.age_group_edges[-1]} and over"]
            groups[spec.name] = pd.cut(frame[spec.name], bins=edges, right=False, labels=labels).astype(str)
        else:
            groups[spec.name] = frame[spec.name].astype(str)
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
    groups = protected_groups(frame, config.features, evaluation)
    fairness = disparate_impact(groups, np.asarray(p) < cutoff, min_group_size=evaluation.min_group_size)
    return metrics, fairness


def min_disparate_impact(report: dict[str, Any]) -> float:
    return min((entry["disparate_impact"] for entry in report.values()), default=1.0)
