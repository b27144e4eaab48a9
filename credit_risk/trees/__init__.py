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
    "service_runtime",
]


def service_runtime(model, tree_runtime: str) -> tuple[object, str]:
    """The scorer the service uses for one applicant, and its name: the one place that chooses.

    With ``serving.tree_runtime: numpy`` and a booster the numpy runtime supports (verified against
    XGBoost here, on the model's own example rows), a :class:`FastModel` ("numpy": probabilities and
    TreeSHAP reasons from arrays, or "numpy+xgboost" when the trees are too deep for its TreeSHAP);
    otherwise the model itself ("xgboost", "linear" for a logistic model, or "scorecard" for a points
    scorecard: a table lookup, points and reasons from the same arrays for one row or a million). Batch
    scoring takes its reasons from the same scorer, so a row's reasons are the ones the service would give.
    """
    import logging

    if model.scorecard is not None:
        return model, "scorecard"
    if model.booster is None:
        return model, "linear"
    if tree_runtime != "numpy":
        return model, "xgboost"
    try:
        fast = FastModel(model, TreeEnsemble.verified(model))
    except UnsupportedModelError as exc:
        logging.getLogger(__name__).warning("numpy tree runtime not used (%s): scoring with XGBoost", exc)
        return model, "xgboost"
    return fast, "numpy" if fast.has_reasons else "numpy+xgboost"
