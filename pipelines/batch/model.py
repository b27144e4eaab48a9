"""The version's outputs as Arrow columns.

Resolving and verifying a version is the registry's (``registry.resolve``, ``registry.fetch_verified``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pyarrow as pa

from credit_risk.config import ModelConfig
from credit_risk.decision import DECISIONS, DecisionArrays, DecisionEngine
from credit_risk.recourse import RecourseSearch
from credit_risk.scoring import ScoringModel
from credit_risk.trees import service_runtime

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ decisions as columns


class DecisionColumns:
    """:meth:`DecisionEngine.decide`'s arrays as Arrow columns, for a whole chunk at once.

    Probabilities come from the model's own predictor (XGBoost's for trees, whatever the chunk
    size), reasons from the scorer the service uses (:func:`credit_risk.trees.service_runtime`),
    so a row's reasons are the ones the service would give.
    """

    def __init__(
        self, model: ScoringModel, config: ModelConfig, *, reasons: bool = True, recourse: bool = False
    ) -> None:
        self.config = config
        self.with_reasons = reasons
        scorer = service_runtime(model, config.serving.tree_runtime)[0]
        explain = scorer.field_contributions if reasons else None
        self.engine = DecisionEngine(model, config, explain=explain)
        # alternatives are searched and checked on the service's scorer, as the service answers them
        self.recourse = (
            RecourseSearch(DecisionEngine(scorer, config), config.recourse) if recourse else None  # type: ignore[arg-type]
        )
        self._reason_codes = pa.array([s.reason_code for s in model.encoder.fields], type=pa.string())

    def reason_lists(self, reason_index: np.ndarray) -> pa.ListArray:
        """Per row, the codes of the reasons (field indices, -1 past the last) as a list column."""
        keep = reason_index >= 0
        offsets = np.zeros(len(reason_index) + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        values = self._reason_codes.take(pa.array(reason_index[keep], type=pa.int32()))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def arrow_columns(self, decided: DecisionArrays) -> dict[str, pa.Array]:
        """probability, score, risk_band and decision (dictionary-encoded), and reasons when decided with them."""
        columns = {
            "probability": pa.array(decided.probability, type=pa.float64()),
            "score": pa.array(decided.score, type=pa.int64()),
            "risk_band": pa.DictionaryArray.from_arrays(decided.band_index, list(self.engine.band_names)),
            "decision": pa.DictionaryArray.from_arrays(decided.decision_index, list(DECISIONS)),
        }
        if decided.reason_index is not None:
            columns["reasons"] = self.reason_lists(decided.reason_index)
        return columns

    def decide(self, matrix: np.ndarray, records: list[dict[str, Any]] | None = None) -> dict[str, pa.Array]:
        """A chunk's encoded matrix decided (with reasons when asked for) as Arrow columns; with a recourse
        search and the chunk's ``records``, a ``recourse`` column too (null for an approval)."""
        decided = self.engine.decide(matrix, with_reasons=self.with_reasons)
        columns = self.arrow_columns(decided)
        if self.recourse is not None and records is not None:
            columns["recourse"] = pa.array(
                [
                    None if d == 0 else json.dumps(self.recourse.search(r, decision=DECISIONS[d]).to_json())
                    for r, d in zip(records, decided.decision_index.tolist(), strict=True)
                ],
                type=pa.string(),
            )
        return columns
