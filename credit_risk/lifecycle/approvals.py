"""A second person's approval of a promotion (SR 11-7: validation independent of development).

When approvals are required (``promotion.require_approval``; by default exactly when an approver
token is configured), a promotion request that passes the gates moves nothing: it becomes a
pending approval in the ledger (control ``approval``), linked to the version's validation report
and to the latest experiment that ran the version as challenger. A different person with the
``approver`` role approves it (the gates are run again and the alias moves) or rejects it, each
with a reason; a pending request expires after ``promotion.approval_hours``. Every step is one
ledger entry with its actor and reason. Rollbacks need no approval (they are recorded as moves).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mlflow.tracking import MlflowClient

from credit_risk import registry, roles
from credit_risk.config import ProjectConfig, Settings
from credit_risk.experiments.model import list_experiments
from credit_risk.lifecycle import ledger
from credit_risk.lifecycle.actions import PromotionRefused, PromotionReport, promote
from credit_risk.lifecycle.history import AliasEvent

CONTROL = "approval"
VALIDATION_REPORT_PATH = "/v1/registry/versions/{version}/validation_report"
EXPERIMENT_REPORT_PATH = "/v1/experiments/{id}"


class ApprovalRefused(registry.RegistryError):
    """The request is not pending (decided, expired); the message says which."""


class ApprovalNotFound(ApprovalRefused):
    """No approval request with that id."""


class SelfApprovalRefused(ApprovalRefused):
    """The person who asked for the promotion may not decide on it."""


@dataclass(frozen=True)
class Approval:
    """One promotion request and what became of it.

    ``state``: pending, approved (the alias moved), rejected, expired, or failed (approved, but the
    promotion could not be done when it was carried out: ``outcome`` says why)."""

    id: str
    version: str
    champion_version: str | None
    requested_by: str  # the actor, as the ledger names it
    requester: str  # the person (token name, or OS user for a job)
    requested_at: str
    expires_at: str
    reason: str
    force: bool
    gates: list[dict[str, Any]]
    validation_report: str | None
    experiment_id: str | None
    experiment_report: str | None
    state: str = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    outcome: str | None = None
    sequences: list[int] = field(default_factory=list)  # the ledger entries of this request

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def person_of(actor: str) -> str:
    """The person behind an actor name: ``alice (admin)`` and ``alice (approver)`` are both alice."""
    return actor.split(" (", 1)[0].strip()


def approvals_required(config: ProjectConfig, settings: Settings) -> bool:
    setting = config.model.promotion.require_approval
    return roles.permission_available(settings, "approver") if setting is None else setting


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _client(settings: Settings, config: ProjectConfig, client: MlflowClient | None) -> MlflowClient:
    return client if client is not None else registry.connect(settings, config.root)


def _experiment_of(client: MlflowClient, name: str, version: str) -> str | None:
    """The latest experiment that ran ``version`` as the challenger."""
    return next((e.id for e in list_experiments(client, name) if e.challenger_version == version), None)


def request_promotion(
    config: ProjectConfig,
    settings: Settings,
    *,
    actor: str,
    reason: str = "",
    force: bool = False,
    version: str | None = None,
    client: MlflowClient | None = None,
    now: datetime | None = None,
) -> Approval:
    """Run the gates (as a dry run) and, when they pass (or an override has a reason), record a
    pending request; nothing moves. A failed gate refuses the request as :func:`promote` would."""
    if force and not reason.strip():
        raise PromotionRefused("an override (force) needs a reason")
    client = _client(settings, config, client)
    name = config.model.registry.model_name
    report = promote(config, settings, reason=reason, force=force, version=version, dry_run=True, client=client)
    if not report.would_promote:
        raise PromotionRefused(
            "promotion of version {} refused:\n  - {}".format(
                report.version, "\n  - ".join(gate.message for gate in report.failed)
            ),
            report=report,
        )
    target = registry.get_version(client, name, report.version)
    tags = (target.tags or {}) if target is not None else {}
    experiment_id = _experiment_of(client, name, report.version)
    started = _now(now)
    figures = {
        "id": f"apr-{uuid.uuid4().hex[:12]}",
        "version": report.version,
        "champion_version": report.champion_version,
        "requester": person_of(actor),
        "force": force,
        "expires_at": (started + timedelta(hours=config.model.promotion.approval_hours)).isoformat(),
        "gates": [gate.to_json() for gate in report.gates],
        "validation_report": (
            VALIDATION_REPORT_PATH.format(version=report.version) if registry.VALIDATION_REPORT_TAG in tags else None
        ),
        "experiment_id": experiment_id,
        "experiment_report": EXPERIMENT_REPORT_PATH.format(id=experiment_id) if experiment_id else None,
    }
    event = ledger.record_control(
        client, name, CONTROL, action="request", reason=reason or "gates passed", actor=actor, figures=figures
    )
    return _requested(event)


def _requested(event: AliasEvent) -> Approval:
    figures = event.figures
    return Approval(
        id=str(figures["id"]),
        version=str(figures["version"]),
        champion_version=figures.get("champion_version"),
        requested_by=event.actor,
        requester=str(figures.get("requester") or person_of(event.actor)),
        requested_at=event.at,
        expires_at=str(figures["expires_at"]),
        reason=event.reason,
        force=bool(figures.get("force")),
        gates=list(figures.get("gates") or []),
        validation_report=figures.get("validation_report"),
        experiment_id=figures.get("experiment_id"),
        experiment_report=figures.get("experiment_report"),
        sequences=[event.sequence],
    )


_DECIDED = {"approve": "approved", "reject": "rejected", "fail": "failed", "promoted": "approved"}


def list_approvals(client: MlflowClient, name: str, *, now: datetime | None = None) -> list[Approval]:
    """Every promotion request with its state as of ``now``, newest first."""
    found: dict[str, Approval] = {}
    for event in ledger.control_history(client, name, CONTROL):
        key = str(event.figures.get("id", ""))
        if event.action == "request":
            found[key] = _requested(event)
            continue
        if key not in found:
            continue
        current = found[key]
        sequences = [*current.sequences, event.sequence]
        if event.action in ("approve", "reject"):
            found[key] = replace(
                current,
                state=_DECIDED[event.action],
                decided_by=event.actor,
                decided_at=event.at,
                decision_reason=event.reason,
                sequences=sequences,
            )
        else:  # "promoted" (the alias moved: figures name the move) or "fail"
            found[key] = replace(
                current, state=_DECIDED.get(event.action, current.state), outcome=event.reason, sequences=sequences
            )
    moment = _now(now)
    return [
        replace(a, state="expired") if a.state == "pending" and datetime.fromisoformat(a.expires_at) <= moment else a
        for a in reversed(found.values())
    ]


def get_approval(client: MlflowClient, name: str, approval_id: str, *, now: datetime | None = None) -> Approval:
    found = next((a for a in list_approvals(client, name, now=now) if a.id == approval_id), None)
    if found is None:
        raise ApprovalNotFound(f"no promotion request {approval_id!r}")
    return found


def _decidable(approval: Approval, actor: str, reason: str, verb: str) -> None:
    if not reason.strip():
        raise ApprovalRefused(f"to {verb} a promotion request needs a reason")
    if approval.state != "pending":
        when = f" at {approval.expires_at}" if approval.state == "expired" else ""
        raise ApprovalRefused(f"promotion request {approval.id} is {approval.state}{when}: it cannot be decided now")
    if person_of(actor) == approval.requester:
        raise SelfApprovalRefused(
            f"{person_of(actor)} asked for this promotion and may not {verb} it: another person must (SR 11-7)"
        )


def approve(
    config: ProjectConfig,
    settings: Settings,
    approval_id: str,
    *,
    actor: str,
    reason: str,
    client: MlflowClient | None = None,
    now: datetime | None = None,
) -> tuple[Approval, PromotionReport]:
    """Approve a pending request of another person: recorded, then the promotion is carried out
    (the gates run again on the same versions; a champion moved meanwhile refuses the move)."""
    client = _client(settings, config, client)
    name = config.model.registry.model_name
    approval = get_approval(client, name, approval_id, now=now)
    _decidable(approval, actor, reason, "approve")
    figures = {"id": approval.id, "version": approval.version, "requester": approval.requester}
    ledger.record_control(client, name, CONTROL, action="approve", reason=reason, actor=actor, figures=figures)
    try:
        report = promote(
            config,
            settings,
            reason=f"{approval.reason} (requested by {approval.requested_by}, approved by {actor}: {reason})",
            force=approval.force,
            version=approval.version,
            actor=actor,
            client=client,
            approval=approval.id,
        )
    except Exception as exc:
        ledger.record_control(client, name, CONTROL, action="fail", reason=str(exc)[:500], actor=actor, figures=figures)
        raise
    assert report.event is not None
    ledger.record_control(
        client,
        name,
        CONTROL,
        action="promoted",
        reason=f"{report.alias} moved to version {report.event.to_version} (history #{report.event.sequence})",
        actor=actor,
        figures={**figures, "move_sequence": report.event.sequence},
    )
    return get_approval(client, name, approval_id, now=now), report


def reject(
    config: ProjectConfig,
    settings: Settings,
    approval_id: str,
    *,
    actor: str,
    reason: str,
    client: MlflowClient | None = None,
    now: datetime | None = None,
) -> Approval:
    """Reject a pending request of another person, with a reason; nothing moves."""
    client = _client(settings, config, client)
    name = config.model.registry.model_name
    approval = get_approval(client, name, approval_id, now=now)
    _decidable(approval, actor, reason, "reject")
    figures = {"id": approval.id, "version": approval.version, "requester": approval.requester}
    ledger.record_control(client, name, CONTROL, action="reject", reason=reason, actor=actor, figures=figures)
    return get_approval(client, name, approval_id, now=now)
