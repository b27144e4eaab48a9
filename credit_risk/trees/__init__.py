"""The booster's trees as arrays: probabilities and TreeSHAP, verified against XGBoost at load.

Shared by the service (one applicant at a time) and batch scoring (a chunk
at a time), so both compute the same reasons.
"""

from credit_risk.trees.layout import (
    MAX_DEPTH,
    MAX_SHAP_DEPTH,
    SMALL_BATCH,
    FastModel,
    TreeEnsemble,
    UnsupportedModelError,
    _applicants,
)
from credit_risk.trees.shap import FieldTables, PathTables

__all__ = [
    "MAX_DEPTH",
    "MAX_SHAP_DEPTH",
    "SMALL_BATCH",
    "FastModel",
    "FieldTables",
    "PathTables",
    "TreeEnsemble",
    "UnsupportedModelError",
    "_applicants",
]
