"""From probability of default to score, risk band, decision and reasons.

Shared by the scoring service and batch scoring, so a decision is made the
same way whichever path scored it. The decision policy comes from
configuration, versioned apart from the model.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from credit_risk.config import ModelConfig
from credit_risk.scoring import ScoringModel

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


class DecisionEngine:
    """Applies the configured scorecard, bands and decision policy to a model's output.

    Every rule works on whole arrays, so one applicant and a million take the
    same code path.
    """

    def __init__(self, model: ScoringModel, config: ModelConfig | PolicySnapshot) -> None:
        self.model = model
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
        if len(probabilities) == 1:  # one applicant: band_index's comparisons on a float
            index = bisect.bisect_left(self._band_list, float(probabilities[0]))
            return [self.band_names[min(index, len(self.band_names) - 1)]]
        return [self.band_names[i] for i in self.band_index(probabilities)]

    def decisions(self, probabilities: np.ndarray) -> list[str]:
        if len(probabilities) == 1:  # one applicant: decision_index's comparisons on a float
            p = float(probabilities[0])
            return [DECISIONS[2 if p >= self.policy.decline_at_or_above else 0 if p < self.policy.approve_below else 1]]
        return [DECISIONS[i] for i in self.decision_index(probabilities)]

    def reasons(self, contributions: np.ndarray, record: Mapping[str, Any]) -> tuple[Reason, ...]:
        """The fields that raised the risk most, largest first; at most ``max_reasons``."""
        order = np.argsort(-contributions, kind="stable")[: self.policy.max_reasons].tolist()
        values = contributions.tolist()  # Python ints and floats: no numpy scalar per lookup
        fields = self.model.encoder.fields
        reasons = []
        for i in order:
            if values[i] > 0:
                field = fields[i]
                value = record[field.name]
                reasons.append(
                    Reason(
                        code=field.reason_code,
                        field=field.name,
                        label=field.label,
                        value=value,
                        value_label=field.describe_value(value),
                        contribution=values[i],
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
        probabilities = self.model.predict_proba(matrix)
        scores = self.scores(probabilities)
        bands = self.bands(probabilities)
        decisions = self.decisions(probabilities)
        contributions = self.model.field_contributions(matrix) if with_reasons else None
        return [
            Assessment(
                probability=float(probabilities[i]),
                score=int(scores[i]),
                band=bands[i],
                decision=decisions[i],
                reasons=self.reasons(contributions[i], records[i]) if contributions is not None else (),
            )
            for i in range(len(records))
        ]
