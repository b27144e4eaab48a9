"""From probability of default to score, risk band, decision and reasons.

Shared by the scoring service and batch scoring, so a decision is made the
same way whichever path scored it. The decision policy comes from
configuration, versioned apart from the model.
"""

from __future__ import annotations

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

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """Scorecard points: higher is lower risk."""
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
        return [self.band_names[i] for i in self.band_index(probabilities)]

    def decisions(self, probabilities: np.ndarray) -> list[str]:
        return [DECISIONS[i] for i in self.decision_index(probabilities)]

    def reasons(self, contributions: np.ndarray, record: Mapping[str, Any]) -> tuple[Reason, ...]:
        """The fields that raised the risk most, largest first; at most ``max_reasons``."""
        order = np.argsort(-contributions, kind="stable")[: self.policy.max_reasons]
        fields = self.model.encoder.fields
        return tuple(
            Reason(
                code=fields[i].reason_code,
                field=fields[i].name,
                label=fields[i].label,
                value=record[fields[i].name],
                value_label=fields[i].describe_value(record[fields[i].name]),
                contribution=float(contributions[i]),
            )
            for i in order
            if contributions[i] > 0
        )

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
