"""The experiment report's typed parts: per arm, the sample ratio, a shadow's disagreement, outcomes.

One pydantic model (:class:`ExperimentReport`) that the report job writes, the route answers and
the page reads; :mod:`credit_risk.experiments.compare` builds it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Model):
    count: int
    total: int
    value: float | None
    low: float | None
    high: float | None


class Interval(_Model):
    value: float | None
    low: float | None
    high: float | None


class Arm(_Model):
    """One arm's live figures (in a shadow: the same applicants, decided by each version)."""

    arm: str
    version: str
    applicants: int
    share: float | None  # of all the experiment's applicants (a shadow: the shadowed share)
    rates: dict[str, Rate]  # approve, review, decline
    score_quantiles: dict[str, float]  # p10, p25, p50, p75, p90
    score_histogram: list[int]  # counts on the report's common score edges
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class SampleRatio(_Model):
    configured_share: float
    observed_share: float | None
    chi_square: float
    p_value: float
    mismatch: bool


class BandChange(_Model):
    band: str
    applicants: int
    would_change: int
    would_approve: int  # the challenger approves, the champion did not (swap-in)
    would_not_approve: int  # the champion approved, the challenger would not (swap-out)


class Disagreement(_Model):
    applicants: int
    agree_share: float | None
    matrix: dict[str, dict[str, int]]  # champion decision -> challenger decision -> applicants
    by_band: list[BandChange]


class OutcomeArm(_Model):
    arm: str
    outcomes: int
    bad_rate: Interval
    auc: Interval


class Outcomes(_Model):
    arms: list[OutcomeArm]
    ahead: str | None  # "challenger", "champion", or None (not enough, or neither with the confidence)
    confidence: float | None  # the share of resamples in which the challenger's AUC is higher
    coverage_note: str


class ExperimentReport(_Model):
    experiment: dict[str, Any]
    as_of: str
    applicants: int
    arms: list[Arm]
    score_edges: list[float]
    score_psi: float | None  # challenger's scores against the champion's
    sample_ratio: SampleRatio | None
    disagreement: Disagreement | None
    outcomes: Outcomes | None
    verdicts: list[str]  # sentences for people: what can and cannot be said yet
