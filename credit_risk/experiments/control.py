"""Start and stop an experiment: checked, then recorded in the registry's ledger (actor, reason).

The service and the job call the same functions; each passes how it verifies the challenger
(the service loads it as it loads the champion, the job downloads and checks it), so a version
that cannot be served is refused before anything is recorded and the running state is untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.experiments.model import CONTROL, Experiment, active_experiment
from credit_risk.lifecycle import ledger
from credit_risk.scoring import ScoringModel

MODES = ("shadow", "split")


class ExperimentRefused(registry.RegistryError):
    """An experiment that cannot start or stop; the message says why."""


class ExperimentNotFound(ExperimentRefused):
    """No experiment with that id."""


def check_same_inputs(champion: ScoringModel, challenger: ScoringModel, version: str) -> None:
    """The challenger reads the applicant fields the champion's requests are validated against."""
    if challenger.schema != champion.schema:
        raise ExperimentRefused(
            f"version {version} was trained on another feature schema than the served version: "
            "an experiment needs both to take the same applicant fields"
        )


def start_experiment(
    client: MlflowClient,
    config: ProjectConfig,
    *,
    challenger_version: str,
    mode: str,
    share: float,
    reason: str,
    actor: str | None,
    verify: Callable[[ModelVersion], None],
) -> Experiment:
    """Check, verify the challenger with ``verify`` (raises to refuse), then record the start."""
    reg = config.model.registry
    settings = config.model.experiments
    if not reason.strip():
        raise ExperimentRefused("an experiment needs a reason")
    if mode not in MODES:
        raise ExperimentRefused(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not 0.0 < share <= 1.0:
        raise ExperimentRefused(f"share must be above 0 and at most 1, not {share}")
    if mode == "split" and share > settings.max_share:
        raise ExperimentRefused(
            f"a split gives the challenger at most {settings.max_share:g} of the applicants "
            f"(experiments.max_share), not {share:g}"
        )
    running = active_experiment(ledger.read_controls(client, reg.model_name), reg.model_name)
    if running is not None:
        raise ExperimentRefused(
            f"experiment {running.id} ({running.mode}, version {running.challenger_version}) is running: "
            "stop it first (one experiment at a time)"
        )
    champion = registry.resolve(client, reg)
    target = registry.get_version(client, reg.model_name, challenger_version)
    if target is None:
        raise ExperimentRefused(f"version {challenger_version} of {reg.model_name!r} does not exist")
    if str(target.version) == str(champion.version):
        raise ExperimentRefused(f"version {challenger_version} is the served version: choose another challenger")
    try:
        verify(target)
    except ExperimentRefused:
        raise
    except Exception as exc:
        raise ExperimentRefused(f"version {challenger_version} cannot be served: {str(exc)[:400]}") from None
    experiment = Experiment(
        id=f"exp-{uuid.uuid4().hex[:12]}",
        model_name=reg.model_name,
        champion_version=str(champion.version),
        challenger_version=str(target.version),
        mode=mode,
        share=float(share),
        reason=reason,
        started_by=actor or "",
        started_at="",
        started_sequence=0,
    )
    event = ledger.record_control(
        client, reg.model_name, CONTROL, action="start", reason=reason, actor=actor, figures=experiment.figures()
    )
    return replace(experiment, started_by=event.actor, started_at=event.at, started_sequence=event.sequence)


def stop_experiment(
    client: MlflowClient, config: ProjectConfig, *, experiment_id: str | None, reason: str, actor: str | None
) -> Experiment:
    """Record the stop of the running experiment (``experiment_id``, when given, must be it)."""
    name = config.model.registry.model_name
    if not reason.strip():
        raise ExperimentRefused("stopping an experiment needs a reason")
    running = active_experiment(ledger.read_controls(client, name), name)
    if running is None or (experiment_id is not None and running.id != experiment_id):
        what = f"experiment {experiment_id} is not running" if experiment_id else "no experiment is running"
        raise ExperimentNotFound(what)
    event = ledger.record_control(
        client, name, CONTROL, action="stop", reason=reason, actor=actor, figures=running.figures()
    )
    return replace(running, stopped_by=event.actor, stopped_at=event.at, stop_reason=reason)
