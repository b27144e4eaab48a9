"""The numpy tree runtime now lives in :mod:`credit_risk.trees` (batch scoring shares it); re-exported here."""

from credit_risk.trees import (  # noqa: F401
    MAX_DEPTH,
    MAX_SHAP_DEPTH,
    SMALL_BATCH,
    FastModel,
    PathTables,
    TreeEnsemble,
    UnsupportedModelError,
    _applicants,
)
