"""The pure scoring function: validated records in, decision records (answer bodies and log records) out.

Kept apart from the web framework (as MLflow's own ``invocations`` is): no
request objects here, so the same function serves a single applicant and a
batch, and is easy to profile on its own. No DataFrame and no scikit-learn:
records are encoded straight into a float32 matrix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from credit_risk.cases.policy import referred_when_paused
from credit_risk.decision_log.record import DecisionRecord
from credit_risk.recourse import RecourseAnswer
from serving.state import Served


def recourse_of(served: Served, record: dict[str, Any], decision: str) -> RecourseAnswer:
    """What would change the decision for one validated record, searched on the served version."""
    if served.recourse is None:
        return RecourseAnswer((), "What would change the decision is not available for this model.")
    return served.recourse.search(record, decision=decision)


class ExperimentArm(NamedTuple):
    """The champion/challenger experiment records are scored in, and their arm."""

    id: str
    arm: str  # champion or challenger
    mode: str  # split (the answer names the arm) or shadow (only the log does)


@dataclass(frozen=True)
class Scored:
    """What one call produced: a body per applicant and the prediction-log records, both from one
    :class:`~credit_risk.decision_log.record.DecisionRecord` each."""

    results: list[dict[str, Any]]
    log_records: list[dict[str, Any]]

    @classmethod
    def of(cls, decisions: Sequence[DecisionRecord]) -> Scored:
        return cls([d.to_answer() for d in decisions], [d.to_log() for d in decisions])


def decide_records(
    served: Served,
    records: Sequence[dict[str, Any]],
    *,
    request_ids: Sequence[str],
    batch_id: str | None,
    with_reasons: bool,
    policy_version: str,
    started: float,
    now: datetime | None = None,
    with_recourse: bool = False,
    paused: bool = False,
    experiment: ExperimentArm | None = None,
) -> list[DecisionRecord]:
    """Score validated records with one model version; ``started`` is ``time.perf_counter()`` at arrival,
    ``now`` the decision time (default: the wall clock). ``with_recourse``: each answer also says what
    would change the decision (``recourse`` and ``recourse_note``, :mod:`credit_risk.recourse`).
    ``paused``: automation is stopped, every decision is a referral carrying the model's own
    (``model_decision``, in the answer and the log). ``experiment``: the experiment and the arm the
    records are in."""
    assessments = served.engine.assess(records, with_reasons=with_reasons)
    now = now or datetime.now(UTC)
    latency_ms = (time.perf_counter() - started) * 1000.0
    experiment_id, experiment_arm, experiment_mode = experiment or (None, None, None)
    decisions = []
    for request_id, record, assessment in zip(request_ids, records, assessments, strict=True):
        decision = referred_when_paused(assessment.decision, paused)
        recourse = recourse_of(served, record, assessment.decision) if with_recourse else None
        decisions.append(
            DecisionRecord(
                request_id=request_id,
                batch_id=batch_id,
                applicant_id=record.get("applicant_id"),
                scored_at=now,
                model_name=served.name,
                model_version=served.version,
                model_alias=served.alias,
                inputs=record,
                probability=assessment.probability,
                score=assessment.score,
                risk_band=assessment.band,
                decision=decision,
                decision_policy_version=policy_version,
                reasons=assessment.reasons,
                latency_ms=latency_ms,
                model_decision=assessment.decision if decision != assessment.decision else None,
                paused=paused,
                recourse=recourse.alternatives if recourse is not None else None,
                recourse_note=recourse.note if recourse is not None else None,
                experiment_id=experiment_id,
                experiment_arm=experiment_arm,
                experiment_mode=experiment_mode,
            )
        )
    return decisions


def score_records(served: Served, records: Sequence[dict[str, Any]], **options: Any) -> Scored:
    """:func:`decide_records` as answer bodies and log records."""
    return Scored.of(decide_records(served, records, **options))
