"""A decision record with every optional part set, for the tests of the decision record's definition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from credit_risk.config import load_project_config
from credit_risk.decision import Reason
from credit_risk.decision_log.record import DecisionRecord
from credit_risk.recourse import Alternative, Change

AT = datetime(2026, 3, 4, 12, 30, 15, 123456, tzinfo=UTC)


def reason(code: str = "DUR") -> Reason:
    return Reason(
        code=code,
        field="duration_in_month",
        label="Loan duration (months)",
        value=48,
        value_label="48",
        contribution=0.31,
    )


def decision_record(**changes: Any) -> DecisionRecord:
    """A decision with every optional part set (a paused, split-experiment referral with recourse)."""
    inputs = {**load_project_config().features.example_record(), "applicant_id": "app-7"}
    alternative = Alternative(
        changes=(Change("duration_in_month", "Loan duration (months)", 48, 24, "48", "24"),),
        decision="approve",
        probability=0.08,
        cost=1.5,
    )
    values: dict[str, Any] = {
        "request_id": "req-1",
        "batch_id": "batch-1",
        "applicant_id": "app-7",
        "scored_at": AT,
        "model_name": "credit-risk",
        "model_version": "3",
        "model_alias": "production",
        "inputs": inputs,
        "probability": 0.42,
        "score": 571,
        "risk_band": "D",
        "decision": "review",
        "decision_policy_version": "policy-2",
        "reasons": (reason("DUR"), reason("CHK")),
        "latency_ms": 0.7,
        "model_decision": "decline",
        "experiment_id": "exp-1",
        "experiment_arm": "challenger",
        "experiment_mode": "split",
        "recourse": (alternative,),
        "recourse_note": None,
        "paused": True,
        **changes,
    }
    return DecisionRecord(**values)
