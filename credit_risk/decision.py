"""From probability of default to score, risk band, decision and reasons: the one place that decides.

:meth:`DecisionEngine.decide` takes an encoded matrix of applicants and returns
:class:`DecisionArrays` (probability, score, band, decision and the reasons'
field indices, one row per applicant). Every caller only shapes that result:
the service into answers and log records (:meth:`DecisionEngine.assess`), the
local batch engine and the Spark tasks into Arrow columns
(``pipelines/batch/model.py``). The decision policy comes from configuration,
versioned apart from the model.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from credit_risk.config import ModelConfig
from credit_risk.scoring import ScoringModel
from credit_risk.trees.kernels import top_reasons

if TYPE_CHECKING:
    from credit_risk.policy import PolicySnapshot

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Reason:
    """A factor that raised the applicant's risk, for an adverse-action notice."""

    code: str
    field: str
    label: str
    value: Any
    value_label: str
    contribution: float


@dataclass(frozen=True, slots=True)
class Assessment:
    probability: float
    score: int
    band: str
    decision: str
    reasons: tuple[Reason, ...]


DECISIONS = ("approve", "review", "decline")


@dataclass(frozen=True, slots=True)
class DecisionArrays:
    """The decision for a matrix of applicants, one row each.

    ``band_index`` indexes the engine's ``band_names``, ``decision_index`` indexes
    :data:`DECISIONS`; ``reason_index`` holds, per row, the field indices (into the
    encoder's fields) of the reasons, largest contribution first, -1 past the last.
    """

    probability: np.ndarray  # float64
    score: np.ndarray  # int64
    band_index: np.ndarray  # int8
    decision_index: np.ndarray  # int8
    contributions: np.ndarray | None = None  # (rows, fields) float64, when reasons were asked for
    reason_index: np.ndarray | None = None  # (rows, max_reasons) int32


class DecisionEngine:
    """Applies the configured scorecard, bands and decision policy to a model's output.

    Every rule works on whole arrays, so one applicant and a million take the
    same code path.
    """

    def __init__(
        self,
        model: ScoringModel,
        config: ModelConfig | PolicySnapshot,
        *,
        explain: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``explain``: per-field contributions of a matrix (default: the model's own); batch scoring
        passes the service's runtime (:func:`credit_risk.trees.service_runtime`) so reasons agree."""
        self.model = model
        self.explain = explain or model.field_contributions
        self.policy = config.decision
        self.band_names = tuple(b.name for b in config.risk_bands)
        self._factor = config.scorecard.factor
        self._offset = config.scorecard.offset
        self._band_edges = np.asarray([b.max_probability for b in config.risk_bands])
        self._band_list = self._band_edges.tolist()

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """Scorecard points: higher is lower risk."""
        if len(probabilities) == 1:  # one applicant: the same IEEE operations on scalars, without the array calls
            q = min(max(float(probabilities[0]), _EPS), 1 - _EPS)
            return np.asarray([np.rint(self._offset + self._factor * np.log((1 - q) / q))], dtype=np.int64)
        p = np.clip(probabilities, _EPS, 1 - _EPS)
        return np.rint(self._offset + self._factor * np.log((1 - p) / p)).astype(np.int64)

    def band_index(self, probabilities: np.ndarray) -> np.ndarray:
        """Index into ``band_names``: the first band whose upper bound is not below p."""
        index = np.searchsorted(self._band_edges, probabilities, side="left")
        return np.minimum(index, len(self.band_names) - 1).astype(np.int8)

    def decision_index(self, probabilities: np.ndarray) -> np.ndarray:
        """Index into ``DECISIONS``: approve below the approve threshold, decline at or above
        the decline threshold, review in between."""
        index = np.ones(len(probabilities), dtype=np.int8)
        index[probabilities < self.policy.approve_below] = 0
        index[probabilities >= self.policy.decline_at_or_above] = 2
        return index

    def bands(self, probabilities: np.ndarray) -> list[str]:
        return [self.band_names[i] for i in self.decide_probabilities(probabilities).band_index.tolist()]

    def decisions(self, probabilities: np.ndarray) -> list[str]:
        return [DECISIONS[i] for i in self.decide_probabilities(probabilities).decision_index.tolist()]

    def decide_probabilities(self, probabilities: np.ndarray) -> DecisionArrays:
        """Score, band and decision for probabilities already computed (no reasons)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if len(probabilities) == 1:  # one applicant: the same comparisons on a float, without the array calls
            p = float(probabilities[0])
            band = min(bisect.bisect_left(self._band_list, p), len(self.band_names) - 1)
            policy = self.policy
            decision = 2 if p >= policy.decline_at_or_above else 0 if p < policy.approve_below else 1
            band_index = np.asarray([band], dtype=np.int8)
            decision_index = np.asarray([decision], dtype=np.int8)
        else:
            band_index = self.band_index(probabilities)
            decision_index = self.decision_index(probabilities)
        return DecisionArrays(probabilities, self.scores(probabilities), band_index, decision_index)

    def decide(self, matrix: np.ndarray, *, with_reasons: bool = True) -> DecisionArrays:
        """The decision for an encoded matrix of applicants: the one function every path calls."""
        decided = self.decide_probabilities(self.model.predict_proba(matrix))
        if not with_reasons:
            return decided
        contributions = np.asarray(self.explain(matrix), dtype=np.float64)
        k = min(self.policy.max_reasons, contributions.shape[1])
        return DecisionArrays(
            decided.probability,
            decided.score,
            decided.band_index,
            decided.decision_index,
            contributions,
            top_reasons(contributions, k),
        )

    def reasons(self, decided: DecisionArrays, row: int, record: Mapping[str, Any]) -> tuple[Reason, ...]:
        """Row ``row``'s reasons as objects in the schema's words, largest first."""
        assert decided.contributions is not None and decided.reason_index is not None, "no reasons were asked for"
        values = decided.contributions[row]
        fields = self.model.encoder.fields
        reasons = []
        for i in decided.reason_index[row].tolist():
            if i < 0:
                break
            field = fields[i]
            value = record[field.name]
            reasons.append(
                Reason(
                    code=field.reason_code,
                    field=field.name,
                    label=field.label,
                    value=value,
                    value_label=field.describe_value(value),
                    contribution=float(values[i]),
                )
            )
        return tuple(reasons)

    def assess(self, records: Sequence[Mapping[str, Any]], *, with_reasons: bool = True) -> list[Assessment]:
        """Score validated records end to end."""
        matrix = self.model.encoder.encode_records(records)
        return self.assess_matrix(matrix, records, with_reasons=with_reasons)

    def assess_matrix(
        self, matrix: np.ndarray, records: Sequence[Mapping[str, Any]], *, with_reasons: bool = True
    ) -> list[Assessment]:
        """:meth:`decide`, shaped as one :class:`Assessment` per record (the service's answers and log)."""
        decided = self.decide(matrix, with_reasons=with_reasons)
        probabilities = decided.probability.tolist()
        scores = decided.score.tolist()
        bands = [self.band_names[i] for i in decided.band_index.tolist()]
        decisions = [DECISIONS[i] for i in decided.decision_index.tolist()]
        return [
            Assessment(
                probability=probabilities[i],
                score=scores[i],
                band=bands[i],
                decision=decisions[i],
                reasons=self.reasons(decided, i, records[i]) if with_reasons else (),
            )
            for i in range(len(records))
        ]
