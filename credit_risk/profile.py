"""The training reference profile and the population stability index.

Bins are fixed on the training data and travel with the model, so the drift
monitor compares live traffic with exactly what the model was trained on:
PSI = sum over bins of (A% - E%) * ln(A% / E%). A missing value (an optional
field not provided) is a bin of its own: each field's entry holds the shares
of its present values and ``missing_share``, the training rows' missing rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from credit_risk.schema import FeatureSchema

PROFILE_VERSION = 1
_QUANTILES = np.linspace(0.1, 0.9, 9)
_FLOOR = 1e-4  # share given to an empty bin so that PSI stays finite


def numeric_edges(values: np.ndarray) -> list[float]:
    """Inner bin edges from the deciles of the present values; bins are (-inf, e0), [e0, e1), ..., [ek, inf)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return np.unique(np.quantile(values, _QUANTILES)).tolist() if len(values) else []


def numeric_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    index = np.searchsorted(np.asarray(edges), np.asarray(values, dtype=np.float64), side="right")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def categorical_shares(values: pd.Series, categories: list[str]) -> np.ndarray:
    counts = values.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    return counts / max(counts.sum(), 1.0)


def with_missing_bin(shares: np.ndarray | list[float], missing_share: float) -> np.ndarray:
    """Shares over the present values' bins, then the missing bin: one vector summing to 1."""
    present = np.asarray(shares, dtype=np.float64) * (1.0 - missing_share)
    return np.append(present, missing_share)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def build_profile(schema: FeatureSchema, frame: pd.DataFrame, probabilities: np.ndarray) -> dict[str, Any]:
    """Bins and shares per field (inputs and protected) and for the score, on training data."""
    features: dict[str, Any] = {}
    for spec in schema.fields:
        column = frame[spec.name]
        present = column[column.notna()]
        missing_share = float(1.0 - len(present) / len(column)) if len(column) else 0.0
        if spec.type == "categorical":
            features[spec.name] = {
                "type": "categorical",
                "categories": list(spec.codes),
                "shares": categorical_shares(present, list(spec.codes)).tolist(),
                "missing_share": missing_share,
            }
        else:
            values = pd.to_numeric(present).to_numpy(dtype=np.float64)
            edges = numeric_edges(values)
            features[spec.name] = {
                "type": spec.type,
                "edges": edges,
                "shares": numeric_shares(values, edges).tolist(),
                "missing_share": missing_share,
            }
    score_edges = numeric_edges(probabilities)
    return {
        "version": PROFILE_VERSION,
        "n_rows": len(frame),
        "features": features,
        "probability": {"edges": score_edges, "shares": numeric_shares(probabilities, score_edges).tolist()},
    }
