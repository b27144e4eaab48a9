"""Promote and roll back: the two ways the serving alias moves, for the jobs and the admin API alike.

A promotion scores the challenger (and the champion) on the holdout from
verified downloads and moves the alias only when every gate holds, or on an
override with a reason; a version without a digest tag, or whose artifacts do
not match it, or unsigned while ``security.require_signed_models`` is true, is
never promoted, override or not. A dry run answers the same
report without moving anything. A rollback only returns the alias to a version
that held it before; anything else is a promotion.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ProjectConfig, Settings
from credit_risk.lifecycle.gates import Evaluation, GateResult, evaluate_gates, evaluate_version, gate_figures
from credit_risk.lifecycle.history import AliasEvent, completed_moves, move_alias
from credit_risk.outcomes.training import gate_split

log = logging.getLogger(__name__)


class PromotionRefused(registry.RegistryError):
    """A promotion that cannot be done; the message names each failed gate with its figures."""

    def __init__(self, message: str, report: PromotionReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class RollbackRefused(registry.RegistryError):
    """Nothing to roll back to, or a target that never held the alias (that is a promotion)."""


@dataclass(frozen=True)
class PromotionReport:
    """What a promotion found: the gates, and the move when one was made (None on a dry run)."""

    version: str
    alias: str
    champion_version: str | None
    gates: list[GateResult]
    forced: bool
    reason: str
    dry_run: bool
    event: AliasEvent | None = None

    @property
    def failed(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def would_promote(self) -> bool:
        """Every gate holds, or an override with a reason was asked for."""
        return not self.failed or (self.forced and bool(self.reason.strip()))

    def to_json(self) -> dict[str, Any]:
        return {
            "would_promote": self.would_promote,
            "version": self.version,
            "alias": self.alias,
            "champion_version": self.champion_version,
            "gates": [gate.to_json() for gate in self.gates],
            "failed_gates": [gate.name for gate in self.failed],
            "forced": self.forced,
            "dry_run": self.dry_run,
            "event": asdict(self.event) if self.event else None,
        }


def _client(settings: Settings, config: ProjectConfig, client: MlflowClient | None) -> MlflowClient:
    return client if client is not None else registry.connect(settings, config.root)


def _target(client: MlflowClient, config: ProjectConfig, version: str | None) -> ModelVersion:
    reg = config.model.registry
    try:
        return registry.resolve(client, reg, version if version is not None else f"@{reg.challenger_alias}")
    except registry.RegistryError as exc:
        hint = "" if version is not None else ": train one first"
        raise PromotionRefused(f"{exc}{hint}") from None


def _evaluate(
    config: ProjectConfig,
    settings: Settings,
    *,
    version: str | None = None,
    force: bool = False,
    reason: str = "",
    client: MlflowClient | None = None,
) -> tuple[PromotionReport, Evaluation, Evaluation | None, ModelVersion | None]:
    """The gates for ``version`` (default: the challenger) against the current champion; nothing moves.

    Returns the report, both evaluations and the champion's registry entry.
    """
    reg = config.model.registry
    client = _client(settings, config, client)
    key = registry.signing_key(settings)
    target = _target(client, config, version)
    number = str(target.version)
    current = registry.version_for_alias(client, reg.model_name, reg.serving_alias)
    if current is not None and str(current.version) == number:
        raise PromotionRefused(f"version {number} already holds {reg.serving_alias!r}")
    try:  # before any evaluation: an unsigned version is refused when signatures are required
        registry.check_signature(target, key, required=config.model.security.require_signed_models)
    except registry.UnverifiedArtifactError as exc:
        raise PromotionRefused(f"version {number} cannot be promoted: {exc}") from None
    split = gate_split(config, settings, target)  # the kind of holdout the target was trained against
    try:
        challenger = evaluate_version(client, target, split, config, signing_key=key)
    except registry.UnverifiedArtifactError as exc:
        raise PromotionRefused(f"version {number} cannot be promoted: {exc}") from None
    champion, champion_error = None, None
    if current is not None:
        try:
            champion = evaluate_version(client, current, split, config, signing_key=key)
        except registry.UnverifiedArtifactError as exc:
            champion_error = str(exc)
    gates = evaluate_gates(
        challenger,
        champion,
        config,
        champion_version=str(current.version) if current else None,
        champion_error=champion_error,
    )
    report = PromotionReport(
        version=number,
        alias=reg.serving_alias,
        champion_version=str(current.version) if current else None,
        gates=gates,
        forced=force,
        reason=reason,
        dry_run=True,
    )
    return report, challenger, champion, current


def promote(
    config: ProjectConfig,
    settings: Settings,
    *,
    reason: str = "",
    force: bool = False,
    version: str | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    client: MlflowClient | None = None,
    approval: str | None = None,
) -> PromotionReport:
    """Move the serving alias to the challenger (or ``version``) if the gates hold.

    ``dry_run``: evaluate and report, move nothing, log nothing. ``actor``: who
    asked (default the OS user). ``run_id``: the MLflow run to log the gates in
    (default a new ``promote vN`` run in the model's experiment). ``approval``: the
    approved request this move carries out (:mod:`credit_risk.lifecycle.approvals`).
    """
    if force and not reason.strip():
        raise PromotionRefused("an override (force) needs a reason")
    reg = config.model.registry
    client = _client(settings, config, client)
    report, challenger, champion, current = _evaluate(
        config, settings, version=version, force=force, reason=reason, client=client
    )
    if dry_run:
        return report
    failures = [gate.message for gate in report.failed]
    _log_run(client, config, report, run_id=run_id)
    if failures and not force:
        raise PromotionRefused(
            "promotion of version {} refused:\n  - {}".format(report.version, "\n  - ".join(failures)),
            report=report,
        )
    figures = gate_figures(challenger, champion)
    if failures:
        figures["overridden_gates"] = failures
    if champion is None and current is not None:
        figures["champion_version"] = str(current.version)
    if approval is not None:
        figures["approval_id"] = approval
    _check_digest_unchanged(client, reg.model_name, report.version, challenger.digest)
    event = move_alias(
        client,
        reg.model_name,
        reg.serving_alias,
        report.version,
        action="promote-override" if failures else "promote",
        reason=reason or "gates passed",
        figures=figures,
        actor=actor,
        expect_from=report.champion_version,
    )
    log.info("%s now points to version %s (was %s)", reg.serving_alias, event.to_version, event.from_version)
    return replace(report, dry_run=False, event=event)


def _check_digest_unchanged(client: MlflowClient, name: str, version: str, digest: str) -> None:
    """The digest tag is still the one whose artifacts were scored (not rewritten during the evaluation)."""
    now = registry.get_version(client, name, version)
    if now is None or (now.tags or {}).get(registry.ARTIFACT_DIGEST_TAG) != digest:
        raise PromotionRefused(f"version {version}'s {registry.ARTIFACT_DIGEST_TAG} tag changed during the evaluation")


def _log_run(client: MlflowClient, config: ProjectConfig, report: PromotionReport, *, run_id: str | None) -> None:
    """The gates' figures and verdict in an MLflow run (the job's own under ``mlflow run``)."""
    own = run_id is None
    if own:
        experiment_id = registry.ensure_experiment(client, config.model.registry.experiment)
        run_id = client.create_run(experiment_id, run_name=f"promote v{report.version}").info.run_id
    assert run_id is not None
    for gate in report.gates:
        if gate.value is not None:
            client.log_metric(run_id, f"gate_{gate.name}", float(gate.value))
    client.log_dict(
        run_id,
        {"version": report.version, **report.to_json(), "failed_gates": [g.message for g in report.failed]},
        "promotion.json",
    )
    if own:
        client.set_terminated(run_id)


# ------------------------------------------------------------------ rollback


def held_before(history: list[AliasEvent], alias: str) -> set[str]:
    """Every version that held ``alias`` according to its completed moves."""
    held: set[str] = set()
    for event in history:
        if event.alias == alias:
            held.add(event.to_version)
            if event.from_version is not None:
                held.add(event.from_version)
    return held


def undo_target(history: list[AliasEvent], alias: str, current: str | None) -> str:
    """The version that held ``alias`` before its last move (after 1 -> 2 -> 1 that is 2)."""
    moves = [e for e in history if e.alias == alias]
    if not moves or current is None:
        raise RollbackRefused(f"no recorded move of {alias!r}: nothing to roll back")
    last = moves[-1]
    if last.to_version != current:
        raise RollbackRefused(
            f"{alias!r} holds version {current}, but its last recorded move (#{last.sequence}) took it to "
            f"{last.to_version}: it was moved outside the history; name the version to go back to"
        )
    if last.from_version is None:
        raise RollbackRefused(f"version {current} has no earlier {alias!r} version to go back to")
    return last.from_version


def rollback(
    config: ProjectConfig,
    settings: Settings,
    *,
    version: str | None = None,
    reason: str = "",
    actor: str | None = None,
    client: MlflowClient | None = None,
) -> AliasEvent:
    """Undo the last move of the serving alias, or return it to ``version``, a version that held it before.

    The target's artifacts are verified before the alias moves; a version
    that never held the alias is refused (promote it, through the gates).
    """
    reg = config.model.registry
    client = _client(settings, config, client)
    current_version = registry.version_for_alias(client, reg.model_name, reg.serving_alias)
    current = str(current_version.version) if current_version else None
    history = completed_moves(client, reg.model_name, reg.serving_alias)
    if version is None:
        version = undo_target(history, reg.serving_alias, current)
    target = registry.get_version(client, reg.model_name, version)
    if target is None:
        raise RollbackRefused(f"version {version} of {reg.model_name!r} does not exist")
    if current == str(version):
        raise RollbackRefused(f"version {version} already holds {reg.serving_alias!r}")
    if str(version) not in held_before(history, reg.serving_alias):
        raise RollbackRefused(
            f"version {version} never held {reg.serving_alias!r}: a rollback only returns to an earlier holder; "
            "promote it instead (through the gates)"
        )
    with tempfile.TemporaryDirectory(prefix="credit-risk-rollback-") as tmp:
        try:
            registry.fetch_verified(
                client,
                target,
                Path(tmp),
                signing_key=registry.signing_key(settings),
                require_signed=config.model.security.require_signed_models,
            )
        except registry.UnverifiedArtifactError as exc:
            raise RollbackRefused(f"version {version} cannot be served: {exc}") from None
    event = move_alias(
        client,
        reg.model_name,
        reg.serving_alias,
        str(version),
        action="rollback",
        reason=reason or "rollback",
        actor=actor,
        expect_from=current,
    )
    log.info("%s rolled back from version %s to %s", reg.serving_alias, event.from_version, event.to_version)
    return event
