"""The running experiment inside one worker: follow the ledger, hold the loaded challenger, and
score through it (the arms of a split, or the champion with the challenger in its shadow).

Every worker of every instance reads the ledger at each registry poll and calls :meth:`follow`
when the controls change; the arm an applicant is in comes from a keyed hash of their id
(:mod:`credit_risk.experiments.assign`), so workers agree without talking to each other.
A worker that cannot load the challenger decides everything with the champion, says why in the
log, and the report's sample-ratio test shows it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion

from credit_risk.config import ProjectConfig
from credit_risk.decision_log.record import DecisionRecord
from credit_risk.experiments import assign
from credit_risk.experiments.control import ExperimentRefused, check_same_inputs
from credit_risk.experiments.model import Experiment, active_experiment
from credit_risk.lifecycle import ledger
from serving.predict import ExperimentArm, Scored, decide_records
from serving.state import ModelHolder, Served

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """An experiment this worker runs, with its challenger loaded and warm."""

    experiment: Experiment
    challenger: Served


class ExperimentFollower:
    """This worker's view of the ledger's experiment; swapped with one reference assignment."""

    def __init__(self, holder: ModelHolder, config: ProjectConfig) -> None:
        self.holder = holder
        self.config = config
        self.running: Running | None = None
        self.failure: str | None = None  # why this worker does not run the ledger's experiment
        self._loaded: dict[str, Served] = {}  # a challenger the start route verified, used once
        self._lock = threading.Lock()

    def follow(self, controls: ledger.Controls) -> None:
        """A control listener: start or stop running the ledger's experiment (in the poll's thread)."""
        experiment = active_experiment(controls, self.config.model.registry.model_name)
        with self._lock:
            if experiment is None:
                self.running, self.failure = None, None
                self._loaded.clear()
                return
            if self.running is not None and self.running.experiment.id == experiment.id:
                return
            version = experiment.challenger_version
            try:
                challenger = self._loaded.pop(version, None) or self.holder.load_version(version)
            except Exception as exc:
                self.running = None
                self.failure = f"version {version} could not be loaded: {str(exc)[:300]}"
                log.error("experiment %s not run by this worker: %s", experiment.id, self.failure)
                return
            self.running, self.failure = Running(experiment, challenger), None
            log.info(
                "experiment %s (%s, %s) running: version %s", experiment.id, experiment.mode, experiment.share, version
            )

    def verify(self, version: ModelVersion) -> None:
        """For :func:`~credit_risk.experiments.control.start_experiment`: load the challenger as the
        champion is loaded (fetched, digest-checked, warmed) and check it takes the same fields."""
        served = self.holder.served
        if served is None:
            raise ExperimentRefused("no model is served: an experiment needs a champion")
        number = str(version.version)
        challenger = self.holder.load_version(number)
        check_same_inputs(served.model, challenger.model, number)
        with self._lock:
            self._loaded = {number: challenger}


def score_with_experiment(
    follower: ExperimentFollower | None,
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
) -> Scored:
    """:func:`serving.predict.score_records`, through the running experiment when there is one (while
    automation is paused every arm refers: ``paused``)."""
    running = follower.running if follower is not None else None
    options = {
        "batch_id": batch_id,
        "with_reasons": with_reasons,
        "policy_version": policy_version,
        "started": started,
        "now": now,
        "with_recourse": with_recourse,
        "paused": paused,
    }
    if running is None or running.experiment.champion_version != served.version:
        return Scored.of(decide_records(served, records, request_ids=request_ids, **options))
    experiment = running.experiment
    chosen = [
        assign.in_share(experiment.id, record.get("applicant_id") or request_id, experiment.share)
        for record, request_id in zip(records, request_ids, strict=True)
    ]
    if experiment.mode == "split":
        return Scored.of(_split(running, served, records, request_ids, chosen, options))
    shadow_reasons = follower.config.model.experiments.shadow_reasons if follower is not None else False
    return Scored.of(_shadow(running, served, records, request_ids, chosen, options, shadow_reasons))


def _split(
    running: Running,
    served: Served,
    records: Sequence[dict[str, Any]],
    request_ids: Sequence[str],
    chosen: list[bool],
    options: dict[str, Any],
) -> list[DecisionRecord]:
    """Each applicant decided by their arm's version; the answer and the record name the arm."""
    decisions: list[DecisionRecord | None] = [None] * len(records)
    for arm, model in (("champion", served), ("challenger", running.challenger)):
        rows = [i for i, picked in enumerate(chosen) if picked == (arm == "challenger")]
        if not rows:
            continue
        arm_decisions = decide_records(
            model,
            [records[i] for i in rows],
            request_ids=[request_ids[i] for i in rows],
            experiment=ExperimentArm(running.experiment.id, arm, "split"),
            **options,
        )
        for i, decision in zip(rows, arm_decisions, strict=True):
            decisions[i] = decision
    return [decision for decision in decisions if decision is not None]


def _shadow(
    running: Running,
    served: Served,
    records: Sequence[dict[str, Any]],
    request_ids: Sequence[str],
    chosen: list[bool],
    options: dict[str, Any],
    shadow_reasons: bool,
) -> list[DecisionRecord]:
    """The champion decides; then the challenger scores the chosen share, logged beside it only."""
    arm = ExperimentArm(running.experiment.id, "champion", "shadow")
    decisions = decide_records(served, records, request_ids=request_ids, experiment=arm, **options)
    rows = [i for i, picked in enumerate(chosen) if picked]
    if rows:
        challenger = running.challenger
        shadows = challenger.engine.assess([records[i] for i in rows], with_reasons=shadow_reasons)
        for i, shadow in zip(rows, shadows, strict=True):
            decisions[i] = decisions[i]._replace(
                shadow_version=challenger.version,
                shadow_probability=shadow.probability,
                shadow_score=shadow.score,
                shadow_risk_band=shadow.band,
                shadow_decision=shadow.decision,
            )
    return decisions


def by_version(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Log records in groups of one model version each (the log takes one version per submission)."""
    versions = {record["model_version"] for record in records}
    if len(versions) <= 1:
        return [records]
    return [[r for r in records if r["model_version"] == version] for version in sorted(versions)]
