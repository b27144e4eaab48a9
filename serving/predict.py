"""The pure scoring function: validated records in, response bodies and log records out.

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
from typing import Any

from serving.state import Served


def recourse_of(served: Served, record: dict[str, Any], decision: str) -> dict[str, Any]:
    """``recourse`` and ``recourse_note`` for one validated record, searched on the served version."""
    if served.recourse is None:
        return {"recourse": [], "recourse_note": "What would change the decision is not available for this model."}
    return served.recourse.search(record, decision=decision).to_json()


@dataclass(frozen=True)
class Scored:
    """What one call produced: a body per applicant and the prediction-log records."""

    results: list[dict[str, Any]]
    log_records: list[dict[str, Any]]


def score_records(
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
) -> Scored:
    """Score validated records with one model version; ``started`` is ``time.perf_counter()`` at arrival,
    ``now`` the decision time (default: the wall clock). ``with_recourse``: each body also says what
    would change the decision (``recourse`` and ``recourse_note``, :mod:`credit_risk.recourse`)."""
    assessments = served.engine.assess(records, with_reasons=with_reasons)
    now = now or datetime.now(UTC)
    scored_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    latency_ms = (time.perf_counter() - started) * 1000.0
    model_ref = served.model_ref
    results = []
    log_records = []
    for request_id, record, assessment in zip(request_ids, records, assessments, strict=True):
        reasons = [
            {
                "code": reason.code,
                "field": reason.field,
                "label": reason.label,
                "value": reason.value,
                "value_label": reason.value_label,
                "contribution": reason.contribution,
            }
            for reason in assessment.reasons
        ]
        results.append(
            {
                "request_id": request_id,
                "model": model_ref,
                "probability_of_default": assessment.probability,
                "score": assessment.score,
                "risk_band": assessment.band,
                "decision": assessment.decision,
                "decision_policy_version": policy_version,
                "reasons": reasons,
                "scored_at": scored_at,
            }
        )
        if with_recourse:
            results[-1].update(recourse_of(served, record, assessment.decision))
        log_records.append(
            {
                "request_id": request_id,
                "batch_id": batch_id,
                "scored_at": now,
                "model_name": served.name,
                "model_version": served.version,
                **record,
                "probability": assessment.probability,
                "score": assessment.score,
                "risk_band": assessment.band,
                "decision": assessment.decision,
                "decision_policy_version": policy_version,
                "reasons": [reason.code for reason in assessment.reasons],
                "latency_ms": latency_ms,
            }
        )
    return Scored(results, log_records)
