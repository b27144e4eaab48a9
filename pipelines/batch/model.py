"""The version's outputs as Arrow columns.

Resolving and verifying a version is the registry's (``registry.resolve``, ``registry.fetch_verified``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from credit_risk.config import ModelConfig
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.scoring import ScoringModel
from credit_risk.trees import FastModel, TreeEnsemble, UnsupportedModelError
from credit_risk.trees.kernels import top_reasons

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ decisions, vectorised


def contributions_like_the_service(model: ScoringModel, config: ModelConfig) -> Callable[[np.ndarray], np.ndarray]:
    """Per-field contributions computed exactly as the service computes them for one applicant.

    With the numpy tree runtime configured (``serving.tree_runtime``) and
    verified, that is its TreeSHAP tables (each row on its own, so a row's
    reasons do not depend on its chunk); otherwise XGBoost's ``pred_contribs``.
    """
    if config.serving.tree_runtime != "numpy" or model.booster is None:
        return model.field_contributions
    try:
        return FastModel(model, TreeEnsemble.verified(model)).field_contributions
    except UnsupportedModelError as exc:
        log.warning("numpy tree runtime not used (%s): reasons from XGBoost", exc)
        return model.field_contributions


class DecisionColumns:
    """The :class:`DecisionEngine`'s outputs as Arrow columns, for a whole chunk at once.

    Probabilities come from the model's own predictor (XGBoost's for trees,
    whatever the chunk size), contributions from :func:`contributions_like_the_service`.
    """

    def __init__(
        self, engine: DecisionEngine, config: ModelConfig, *, reasons: bool = True, paused: bool = False
    ) -> None:
        self.engine = engine
        self.config = config
        self.paused = paused  # automation paused (the ledger's stop switch): every row is referred
        self._max_reasons = config.decision.max_reasons
        self._reason_codes = pa.array([s.reason_code for s in engine.model.encoder.fields], type=pa.string())
        self.contributions = contributions_like_the_service(engine.model, config) if reasons else None

    def reason_lists(self, contributions: np.ndarray) -> pa.ListArray:
        """Per row, the codes of the fields that raised the risk most, largest first (as the engine:
        a stable descending sort, then only positive contributions)."""
        k = min(self._max_reasons, contributions.shape[1])
        order = top_reasons(contributions, k)
        keep = order >= 0
        offsets = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        values = self._reason_codes.take(pa.array(order[keep], type=pa.int32()))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def reasons(self, matrix: np.ndarray) -> pa.ListArray:
        assert self.contributions is not None, "reasons were not asked for"
        return self.reason_lists(self.contributions(matrix))

    def decision_index(self, probabilities: np.ndarray) -> np.ndarray:
        """The engine's decisions, or every one referred while automation is paused."""
        index = self.engine.decision_index(probabilities)
        return np.full_like(index, DECISIONS.index("review")) if self.paused else index

    def arrow_columns(self, probabilities: np.ndarray) -> dict[str, pa.Array]:
        return {
            "probability": pa.array(probabilities, type=pa.float64()),
            "score": pa.array(self.engine.scores(probabilities), type=pa.int64()),
            "risk_band": pa.DictionaryArray.from_arrays(
                self.engine.band_index(probabilities), list(self.engine.band_names)
            ),
            "decision": pa.DictionaryArray.from_arrays(self.decision_index(probabilities), list(DECISIONS)),
        }
