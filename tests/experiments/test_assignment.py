"""The arm assignment: a keyed hash of the applicant id, the same in every process, at the configured share."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from credit_risk.config import ExperimentsConfig
from credit_risk.experiments import assign, stats

pytestmark = pytest.mark.code

APPLICANTS = 100_000


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3, 0.5])
def test_the_challengers_share_of_100000_applicants_is_within_half_a_point_and_no_mismatch_fires(share: float) -> None:
    chosen = sum(assign.in_share("exp-0123456789ab", f"applicant-{i}", share) for i in range(APPLICANTS))
    observed = chosen / APPLICANTS
    assert abs(observed - share) < 0.005, f"challenger share {observed:.4f} for {share}"
    _, p_value = stats.sample_ratio_p_value([APPLICANTS - chosen, chosen], [1 - share, share])
    assert p_value >= ExperimentsConfig().srm_p_value, f"the mismatch test fired (p={p_value:.3g})"


def test_a_broken_assignment_is_caught_by_the_mismatch_test() -> None:
    _, p_value = stats.sample_ratio_p_value([APPLICANTS - 9_000, 9_000], [0.9, 0.1])  # 9.0% against 10%
    assert p_value < ExperimentsConfig().srm_p_value


def test_an_applicant_gets_the_same_arm_in_another_process() -> None:
    ids = [f"applicant-{i}" for i in range(200)]
    here = [assign.arm("exp-0123456789ab", key, 0.5) for key in ids]
    code = (
        "from credit_risk.experiments import assign; "
        f"print(','.join(assign.arm('exp-0123456789ab', f'applicant-{{i}}', 0.5) for i in range({len(ids)})))"
    )
    # another interpreter with another hash seed: nothing process-local decides the arm
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345"}
    ).stdout.strip()
    assert there.split(",") == here


def test_another_experiment_draws_other_groups() -> None:
    first = np.array([assign.in_share("exp-000000000001", f"a{i}", 0.5) for i in range(2000)])
    second = np.array([assign.in_share("exp-000000000002", f"a{i}", 0.5) for i in range(2000)])
    assert 0.4 < np.mean(first == second) < 0.6, "the experiment's id keys the hash"
