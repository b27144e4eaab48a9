"""The comparison on synthetic logged rows: outcomes, which arm is ahead, and the sample-ratio test."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from credit_risk.config import ExperimentsConfig
from credit_risk.experiments import assign
from credit_risk.experiments.compare import compare
from credit_risk.experiments.model import Experiment

pytestmark = pytest.mark.code

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _experiment(mode: str, share: float) -> Experiment:
    return Experiment(
        id="exp-0123456789ab",
        model_name="credit-risk",
        champion_version="1",
        challenger_version="2",
        mode=mode,
        share=share,
        reason="test",
        started_by="test",
        started_at="2026-12-01T00:00:00+00:00",
        started_sequence=1,
    )


def _decision(p: np.ndarray) -> np.ndarray:
    return np.where(p < 0.1667, "approve", np.where(p < 0.5, "review", "decline"))


def _split_rows(n: int, *, share: float, outcomes: int, challenger_better: bool, seed: int = 0) -> pd.DataFrame:
    """Applicants assigned by the real hash; the better arm's probabilities track the outcome more closely."""
    generator = np.random.default_rng(seed)
    arms = np.array([assign.arm("exp-0123456789ab", f"a{i}", share) for i in range(n)])
    labels = generator.integers(0, 2, n)
    sharp = np.clip(0.3 + 0.4 * (labels - 0.5) + generator.normal(0, 0.15, n), 0.01, 0.99)
    blunt = np.clip(0.3 + 0.05 * (labels - 0.5) + generator.normal(0, 0.15, n), 0.01, 0.99)
    better = (arms == "challenger") == challenger_better
    probability = np.where(better, sharp, blunt)
    label = np.where(np.arange(n) < outcomes, labels, np.nan)
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "experiment_arm": arms,
            "probability": probability,
            "score": np.round(600 - 100 * probability),
            "risk_band": "C",
            "decision": _decision(probability),
            "latency_ms": 1.0,
            "shadow_decision": None,
            "label": label,
        }
    )


def test_the_better_challenger_is_ahead_on_matured_outcomes() -> None:
    rows = _split_rows(4000, share=0.5, outcomes=4000, challenger_better=True)
    report = compare(rows, _experiment("split", 0.5), ExperimentsConfig(), as_of=NOW)
    assert report.outcomes is not None and report.outcomes.ahead == "challenger"
    arms = {arm.arm: arm for arm in report.outcomes.arms}
    assert arms["challenger"].auc.value > arms["champion"].auc.value
    assert arms["challenger"].auc.low <= arms["challenger"].auc.value <= arms["challenger"].auc.high
    assert any("the challenger is ahead" in v for v in report.verdicts)


def test_without_enough_matured_outcomes_no_arm_is_called_ahead() -> None:
    rows = _split_rows(4000, share=0.5, outcomes=40, challenger_better=True)
    report = compare(rows, _experiment("split", 0.5), ExperimentsConfig(), as_of=NOW)
    assert report.outcomes is not None and report.outcomes.ahead is None
    assert any(v.startswith("Not yet enough matured outcomes") for v in report.verdicts)


def test_a_share_far_from_the_configured_one_is_a_sample_ratio_mismatch() -> None:
    rows = _split_rows(20_000, share=0.3, outcomes=0, challenger_better=True)
    report = compare(rows, _experiment("split", 0.2), ExperimentsConfig(), as_of=NOW)  # logged at 30%, said 20%
    assert report.sample_ratio is not None and report.sample_ratio.mismatch
    assert any("the assignment is broken" in v for v in report.verdicts)


def test_decision_rates_carry_intervals_that_hold_them() -> None:
    rows = _split_rows(2000, share=0.5, outcomes=0, challenger_better=False)
    report = compare(rows, _experiment("split", 0.5), ExperimentsConfig(), as_of=NOW)
    for arm in report.arms:
        for rate in arm.rates.values():
            assert rate.low <= rate.value <= rate.high
        assert sum(rate.count for rate in arm.rates.values()) == arm.applicants
