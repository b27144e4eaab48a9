"""Reports of a training run: plots and the model card (the metrics themselves: :mod:`credit_risk.metrics`,
which the jobs import directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from credit_risk.schema import FeatureSchema

# ------------------------------------------------------------------ plots


# scikit-learn is imported by the plots that need it: with SciPy it costs a second at import, and the
# monitoring and performance jobs use this module only for save_figure


def plot_roc(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"model (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (holdout)")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def plot_calibration(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, p, n_bins=8, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.set(
        xlabel="Predicted probability of default",
        ylabel="Observed default rate",
        title="Calibration (holdout, quantile bins)",
    )
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def plot_score_distribution(y: np.ndarray, scores: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(scores.min(), scores.max(), 25)
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, label="good")
    ax.hist(scores[y == 1], bins=bins, alpha=0.6, label="bad (default)")
    ax.set(xlabel="Score (higher = lower risk)", ylabel="Applicants", title="Score distribution by outcome")
    ax.legend()
    return save_figure(fig, path)


def plot_importance(importance: pd.Series, path: Path) -> Path:
    importance = importance.sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(importance) + 1))
    ax.barh(importance.index, importance.to_numpy())
    ax.set(xlabel="Mean |contribution| to log-odds (training data)", title="Feature importance")
    return save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write a figure to ``path`` and release it (no display on a server)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ model card


def model_card(
    *,
    name: str,
    kind: str,
    params: dict[str, Any],
    schema: FeatureSchema,
    data_path: str,
    n_train: int,
    n_holdout: int,
    cv: dict[str, float],
    holdout: dict[str, float],
    fairness: dict[str, Any],
    threshold: float,
) -> str:
    """A markdown model card: data, features, metrics, fairness, limitations, intended use."""
    inputs = "\n".join(
        f"- `{f.name}`: {f.label}" + (f" (monotone: {f.monotone})" if f.monotone else "") for f in schema.inputs
    )
    protected = ", ".join(f"`{f.name}`" for f in schema.protected_fields)
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in holdout.items())
    fair = "\n".join(
        f"| `{attr}` | {entry['disparate_impact']:.3f} | "
        + "; ".join(f"{g}: {s['approval_rate']:.2f} (n={s['n']})" for g, s in entry["groups"].items())
        + " |"
        for attr, entry in fairness.items()
    )
    return f"""# Model card: {name}

## Intended use
Estimates the probability that an applicant for consumer credit defaults, to
support (not replace) a lending decision with human review of borderline
cases. Decisions: approve below P(default) {threshold:.4f} (cost-optimal under
the 5:1 cost matrix), review in between, decline at the configured cut-off.

## Model
- Kind: {kind}; parameters: `{params}`
- Selected by repeated stratified cross-validated ROC-AUC; refitted on all
  training rows; evaluated once on a holdout no selection step saw.

## Data
- `{data_path}`: Statlog German Credit (Hofmann, 1994; UCI, CC BY 4.0).
- {n_train} training rows, {n_holdout} holdout rows (stratified, seeded).

## Features
Model inputs:
{inputs}

Protected attributes, excluded from the inputs and used only for fairness
reporting: {protected}.

## Metrics
Cross-validated ROC-AUC: {cv["roc_auc_cv_mean"]:.4f} ± {cv["roc_auc_cv_std"]:.4f}.

| holdout metric | value |
|---|---|
{metrics}

## Fairness (approval at the approve threshold, holdout)
| attribute | disparate impact | approval rate by group |
|---|---|---|
{fair}

Ratios below 0.8 (four-fifths rule) are a warning sign; groups under the
configured minimum size are reported but not gated.

## Limitations
- German Credit is small (1,000 applicants), from the 1970s, with bad credits
  oversampled (30%): probabilities are not population default rates and need
  recalibration before use on a real portfolio.
- A single 200-row holdout swings by several AUC points; the CV figure is the
  more reliable estimate.
- Excluding protected attributes does not remove proxies for them; monitor
  approval rates by group in production.
"""
