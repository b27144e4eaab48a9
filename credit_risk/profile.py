"""The training reference profile and the population stability index.

Bins are fixed on the training data and travel with the model, so the drift
monitor compares live traffic with exactly what the model was trained on:
PSI = sum over bins of (A% - E%) * ln(A% / E%).
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
    """Inner bin edges from the deciles; bins are (-inf, e0), [e0, e1), ..., [ek, inf)."""
    return np.unique(np.quantile(np.asarray(values, dtype=np.float64), _QUANTILES)).tolist()


def numeric_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    index = np.searchsorted(np.asarray(edges), np.asarray(values, dtype=np.float64), side="right")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def categorical_shares(values: pd.Series, categories: list[str]) -> np.ndarray:
    counts = values.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    return counts / max(counts.sum(), 1.0)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def build_profile(schema: FeatureSchema, frame: pd.DataFrame, probabilities: np.ndarray) -> dict[str, Any]:
    """Bins and shares per field (inputs and protected) and for the score, on training data."""
    features: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.type == "categorical":
            features[spec.name] = {
                "type": "categorical",
                "categories": list(spec.codes),
                "shares": categorical_shares(frame[spec.name], list(spec.codes)).tolist(),
            }
        else:
            edges = numeric_edges(frame[spec.name].to_numpy())
            features[spec.name] = {
                "type": "integer",
                "edges": edges,
                "shares": numeric_shares(frame[spec.name].to_numpy(), edges).tolist(),
            }
    score_edges = numeric_edges(probabilities)
    return {
        "version": PROFILE_VERSION,
        "n_rows": len(frame),
        "features": features,
        "probability": {"edges": score_edges, "shares": numeric_shares(probabilities, score_edges).tolist()},
    }
