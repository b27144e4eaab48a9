"""Override and service-level figures, and bad rates by who approved the loan, on hand-made cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from credit_risk.cases.figures import oversight_figures

pytestmark = pytest.mark.code

DUE = datetime(2026, 12, 9, tzinfo=UTC)


def case(request_id: str, band: str, final: str, *, override: bool, by: str, reason: str | None, late: bool) -> dict:
    return {
        "request_id": request_id,
        "risk_band": band,
        "final_decision": final,
        "override": int(override),
        "decided_by": by,
        "reason_code": reason,
        "due_at": DUE,
        "decided_at": DUE + timedelta(hours=1 if late else -1),
    }


DECIDED = [
    case("r1", "D", "approve", override=False, by="ann", reason=None, late=False),
    case("r2", "D", "decline", override=False, by="ann", reason="documents_missing", late=False),
    case("r3", "F", "approve", override=True, by="bob", reason="verified_income", late=True),
    case("r4", "F", "approve", override=True, by="ann", reason="verified_income", late=False),
]
ROWS = {  # matured decisions with their outcome: request id, band, the model's decision, label
    "request_ids": ["m1", "m2", "m3", "r1", "r3", "r4", "r2"],
    "bands": ["D", "D", "F", "D", "F", "F", "D"],
    "decisions": ["approve", "approve", "approve", "review", "decline", "decline", "review"],
    "labels": np.array([0.0, 1.0, np.nan, 1.0, 0.0, 1.0, np.nan]),
}


def figures():
    return oversight_figures(DECIDED, band_names=["D", "F"], **ROWS)


def test_overrides_are_counted_by_band_reviewer_and_reason() -> None:
    result = figures()
    assert (result.cases_decided, result.overrides, result.override_rate) == (4, 2, 0.5)
    assert result.override_by_band["F"].rate == 1.0 and result.override_by_band["D"].rate == 0.0
    assert result.override_by_reviewer["ann"].decided == 3 and result.override_by_reviewer["ann"].overrides == 1
    assert result.overrides_by_reason == {"verified_income": 2}


def test_the_service_level_is_the_share_decided_by_the_due_time() -> None:
    result = figures()
    assert (result.decided_within_due, result.service_level) == (3, 0.75)


def test_bad_rates_separate_loans_the_model_approved_from_those_a_reviewer_approved() -> None:
    by_band = {band.band: band for band in figures().approved_by_band}
    assert (by_band["D"].model_approved, by_band["D"].model_bad_rate) == (2, 0.5)  # m1 good, m2 bad
    assert (by_band["D"].human_approved, by_band["D"].human_bad_rate) == (1, 1.0)  # r1
    assert (by_band["F"].model_approved, by_band["F"].model_bad_rate) == (0, None)  # m3: no outcome yet
    assert (by_band["F"].human_approved, by_band["F"].human_bad_rate) == (2, 0.5)  # r3, r4 (overrides)
