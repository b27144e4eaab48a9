"""The controls every worker and instance follows, recorded in the registry's ledger.

The registry's ordered history (:mod:`credit_risk.lifecycle.history`) records alias moves; it
also records the changes that move no alias but change how decisions are made: the stop switch
(``automation``), champion/challenger experiments (``experiment``) and promotion approvals
(``approval``). Each change is one completed entry with its actor, reason and figures, under a
subject ``control:<name>``. The state of a control is its latest entry: every worker reads the
ledger at each registry poll (one ``get_registered_model`` call) and so follows a change within
``serving.poll_interval_seconds``, on every instance that shares the registry, with no other
channel between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient

from credit_risk.lifecycle import history
from credit_risk.lifecycle.history import AliasEvent

SUBJECT_PREFIX = "control:"


def subject(control: str) -> str:
    return f"{SUBJECT_PREFIX}{control}"


def record_control(
    client: MlflowClient,
    name: str,
    control: str,
    *,
    action: str,
    reason: str,
    actor: str | None,
    figures: dict[str, Any] | None = None,
) -> AliasEvent:
    """Record a change of ``control`` (its new state in ``figures``) in the ledger; returns the entry."""
    return history.record_event(
        client, name, subject=subject(control), action=action, reason=reason, actor=actor, figures=figures
    )


@dataclass(frozen=True)
class Controls:
    """The latest ledger entry of each control, as one worker last read it."""

    latest: dict[str, AliasEvent] = field(default_factory=dict)
    sequence: int = 0  # the ledger's newest sequence number when read (changes are visible by it)

    def get(self, control: str) -> AliasEvent | None:
        return self.latest.get(control)


def read_controls(client: MlflowClient, name: str) -> Controls:
    """Every control's latest completed entry, from one read of the registry."""
    events = history.alias_history(client, name)
    latest: dict[str, AliasEvent] = {}
    for event in events:
        if event.alias.startswith(SUBJECT_PREFIX) and event.state == "completed":
            latest[event.alias.removeprefix(SUBJECT_PREFIX)] = event
    return Controls(latest=latest, sequence=max((event.sequence for event in events), default=0))


def control_history(client: MlflowClient, name: str, control: str) -> list[AliasEvent]:
    """Every completed change of ``control``, oldest first."""
    return [e for e in history.alias_history(client, name) if e.alias == subject(control) and e.state == "completed"]
