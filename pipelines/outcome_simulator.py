"""Prove the loop: score applicants through the real API across simulated dates, draw their outcomes
from a known ground truth that shifts on a given date, and load them back through ``POST /v1/outcomes``.

Ground truth: before the shift a loan defaults with the probability the served
model gave it (the model is right); from the shift on, with a different, known
logistic model (``shifted_probability``: the applicants without a checking
account, once the safest, become the riskiest, and some loan purposes and low
savings and longer loans add risk), which the served model cannot know. Approved applicants
get a loan and an outcome; referred ones half the time (a reviewer books
them); declined ones never do: the selection bias the realized figures carry.

The service stamps each decision with its own clock: the caller passes
``set_clock`` to move it (an in-process app's ``runtime.clock``); over plain
HTTP the decisions are dated now.

From the command line it draws outcomes for what the prediction log already
holds (each booked loan defaults with its logged probability, observed now)
and writes them as a file for the outcomes job:

``python -m pipelines.outcome_simulator --from-log --output outcomes.csv``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.paths import read_dirs, resolve_log_dir
from credit_risk.decision_log.reader import LogDirs
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.schema import FeatureSchema
from pipelines.cli import add_config_dir
from pipelines.synthetic import generate_applicants

_LOAD_RETRY_SECONDS = 20.0  # decisions reach the log within the writer's flush interval


@dataclass(frozen=True)
class Plan:
    """``days`` simulated days from ``start``, ``per_day`` applicants a day, the truth shifting on ``shift_on``."""

    start: date
    days: int
    shift_on: date
    per_day: int = 25
    seed: int = 7
    outcome_after_days: tuple[int, int] = (5, 30)  # an outcome is observed this long after the decision
    review_booked_share: float = 0.5


@dataclass(frozen=True)
class Simulation:
    decisions: pd.DataFrame  # request_id, applicant_id, decided_at, decision, probability, booked, shifted
    outcomes: pd.DataFrame  # the rows loaded: request_id or applicant_id, outcome, observed_at
    loads: list[dict[str, Any]]  # the API's answers to the loads


def shifted_probability(applicants: pd.DataFrame) -> np.ndarray:
    """The ground truth after the shift: a known logistic model the served model does not follow."""
    logit = (
        -3.6
        + 2.6 * (applicants["status_of_existing_checking_account"] == "no_account")
        + 1.2 * applicants["purpose"].isin(["car_new", "education", "business"])
        + 1.4 * (applicants["savings_account_and_bonds"] == "below_100_dm")
        + 1.0 * (applicants["duration_in_month"] - 20) / 12
    )
    return 1 / (1 + np.exp(-logit.to_numpy(dtype=np.float64)))


def _score_day(http: httpx.Client, applicants: pd.DataFrame, max_batch: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    records = applicants.to_dict("records")
    for i in range(0, len(records), max_batch):
        response = http.post(
            "/v1/predict/batch", json={"applicants": records[i : i + max_batch]}, params={"reasons": "false"}
        )
        response.raise_for_status()
        results += response.json()["results"]
    return results


def score_days(
    http: httpx.Client,
    source: pd.DataFrame,
    schema: FeatureSchema,
    plan: Plan,
    *,
    set_clock: Callable[[datetime], None] | None,
    max_batch: int,
) -> pd.DataFrame:
    """Score ``per_day`` applicants on each simulated day; the decisions with their truth and booking."""
    rng = np.random.default_rng(plan.seed)
    frames = []
    for day in range(plan.days):
        when = datetime.combine(plan.start + timedelta(days=day), day_time(12), UTC)
        if set_clock is not None:
            set_clock(when)
        applicants = generate_applicants(source, schema, rows=plan.per_day, seed=plan.seed * 10_000 + day)
        applicants["applicant_id"] = [f"sim-{plan.seed}-{day}-{i}" for i in range(plan.per_day)]
        results = _score_day(http, applicants, max_batch)
        frame = applicants.copy()
        frame["request_id"] = [r["request_id"] for r in results]
        frame["decision"] = [r["decision"] for r in results]
        frame["probability"] = [r["probability_of_default"] for r in results]
        frame["decided_at"] = when
        frames.append(frame)
    decisions = pd.concat(frames, ignore_index=True)
    decisions["shifted"] = decisions["decided_at"].dt.date >= plan.shift_on
    decisions["true_probability"] = np.where(
        decisions["shifted"], shifted_probability(decisions), decisions["probability"].to_numpy()
    )
    review = decisions["decision"] == "review"
    decisions["booked"] = (decisions["decision"] == "approve") | (
        review & (rng.random(len(decisions)) < plan.review_booked_share)
    )
    return decisions


def draw_outcomes(decisions: pd.DataFrame, schema: FeatureSchema, plan: Plan) -> pd.DataFrame:
    """An outcome for every booked loan, drawn from the ground truth; every tenth names the applicant."""
    rng = np.random.default_rng(plan.seed + 1)
    booked = decisions[decisions["booked"]].reset_index(drop=True)
    bad = rng.random(len(booked)) < booked["true_probability"].to_numpy()
    lo, hi = plan.outcome_after_days
    after = pd.to_timedelta(rng.integers(lo, hi + 1, size=len(booked)), unit="D")
    by_applicant = np.arange(len(booked)) % 10 == 0
    return pd.DataFrame(
        {
            "request_id": np.where(by_applicant, None, booked["request_id"]),
            "applicant_id": np.where(by_applicant, booked["applicant_id"], None),
            "outcome": np.where(bad, schema.target.event, schema.target.non_event),
            "observed_at": (booked["decided_at"] + after).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def load_outcomes(http: httpx.Client, outcomes: pd.DataFrame, *, token: str, max_rows: int) -> list[dict[str, Any]]:
    """POST the outcomes in chunks; a chunk refused only for decisions not yet flushed to the log is retried."""
    answers = []
    headers = {"Authorization": f"Bearer {token}"}
    rows = [{k: v for k, v in row.items() if isinstance(v, str)} for row in outcomes.to_dict("records")]
    for i in range(0, len(rows), max_rows):
        chunk = {"outcomes": rows[i : i + max_rows]}
        deadline = time.monotonic() + _LOAD_RETRY_SECONDS
        while True:
            response = http.post("/v1/outcomes", json=chunk, headers=headers)
            pending = response.status_code == 422 and all(
                p.get("type") == "unknown_id" for p in response.json().get("detail", [])
            )
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        response.raise_for_status()
        answers.append(response.json())
    return answers


def simulate(
    http: httpx.Client,
    source: pd.DataFrame,
    schema: FeatureSchema,
    plan: Plan,
    *,
    token: str,
    set_clock: Callable[[datetime], None] | None = None,
    max_batch: int = 1000,
    max_outcomes: int = 1000,
) -> Simulation:
    """The whole loop: score across the simulated days, draw the outcomes, load them."""
    decisions = score_days(http, source, schema, plan, set_clock=set_clock, max_batch=max_batch)
    outcomes = draw_outcomes(decisions, schema, plan)
    loads = load_outcomes(http, outcomes, token=token, max_rows=max_outcomes)
    return Simulation(decisions, outcomes, loads)


def outcomes_from_log(
    config: ProjectConfig, log_dir: LogDirs, *, seed: int, now: datetime | None = None
) -> pd.DataFrame:
    """An outcome per booked logged decision, drawn from its own logged probability, observed ``now``."""
    rng = np.random.default_rng(seed)
    decisions = read_decisions(
        log_dir,
        model_name=config.model.registry.model_name,
        columns=["request_id", "scored_at", "probability", "decision"],
    ).to_pandas()
    review = decisions["decision"] == "review"
    booked = decisions[(decisions["decision"] == "approve") | (review & (rng.random(len(decisions)) < 0.5))]
    bad = rng.random(len(booked)) < booked["probability"].to_numpy()
    target = config.features.target
    observed = pd.Series(now or datetime.now(UTC), index=booked.index).where(
        booked["scored_at"] <= (now or datetime.now(UTC)), booked["scored_at"]
    )
    return pd.DataFrame(
        {
            "request_id": booked["request_id"].to_numpy(),
            "outcome": np.where(bad, target.event, target.non_event),
            "observed_at": pd.to_datetime(observed, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_numpy(),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--from-log", action="store_true", required=True, help="draw outcomes for logged decisions")
    parser.add_argument("--output", type=Path, required=True, help="CSV file of outcomes")
    parser.add_argument("--log-dir", default="", help="prediction log folder (default: as the service)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = Settings()
    config = load_project_config(args.config_dir or settings.config_dir)
    log_dir = Path(args.log_dir) if args.log_dir else resolve_log_dir(config, settings)
    outcomes = outcomes_from_log(config, read_dirs(config, settings, args.log_dir), seed=args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    outcomes.to_csv(args.output, index=False)
    print(f"wrote {len(outcomes)} outcome(s) for the booked decisions in {log_dir} to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
