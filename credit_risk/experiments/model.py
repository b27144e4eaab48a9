"""An experiment as the ledger holds it: one start entry, and a stop entry when it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlflow.tracking import MlflowClient

from credit_risk.lifecycle import ledger
from credit_risk.lifecycle.history import AliasEvent

CONTROL = "experiment"
ARMS = ("champion", "challenger")
Mode = Literal["shadow", "split"]


@dataclass(frozen=True)
class Experiment:
    """One champion/challenger experiment of a served model.

    ``mode``: ``shadow`` (the challenger scores ``share`` of the applicants beside the champion, its
    answer only logged) or ``split`` (the challenger decides for ``share`` of the applicants)."""

    id: str
    model_name: str
    champion_version: str
    challenger_version: str
    mode: str
    share: float
    reason: str
    started_by: str
    started_at: str
    started_sequence: int
    stopped_by: str | None = None
    stopped_at: str | None = None
    stop_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    def figures(self) -> dict[str, Any]:
        """What the ledger's start and stop entries hold (``version`` is the challenger's)."""
        return {
            "id": self.id,
            "version": self.challenger_version,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "mode": self.mode,
            "share": self.share,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"active": self.active}


def _started(event: AliasEvent, name: str) -> Experiment:
    figures = event.figures
    return Experiment(
        id=str(figures["id"]),
        model_name=name,
        champion_version=str(figures["champion_version"]),
        challenger_version=str(figures["challenger_version"]),
        mode=str(figures["mode"]),
        share=float(figures["share"]),
        reason=event.reason,
        started_by=event.actor,
        started_at=event.at,
        started_sequence=event.sequence,
    )


def experiments_from(events: list[AliasEvent], name: str) -> list[Experiment]:
    """Every experiment in the ledger's entries (oldest first), each with its stop when it has one."""
    found: dict[str, Experiment] = {}
    for event in events:
        if event.alias != ledger.subject(CONTROL) or event.state != "completed" or "id" not in event.figures:
            continue
        key = str(event.figures["id"])
        if event.action == "start":
            found[key] = _started(event, name)
        elif event.action == "stop" and key in found:
            start = found[key]
            found[key] = Experiment(
                **{**asdict(start), "stopped_by": event.actor, "stopped_at": event.at, "stop_reason": event.reason}
            )
    return list(found.values())


def active_experiment(controls: ledger.Controls, name: str) -> Experiment | None:
    """The running experiment, from the controls a worker last read (its latest entry is a start)."""
    latest = controls.get(CONTROL)
    if latest is None or latest.action != "start" or "id" not in latest.figures:
        return None
    return _started(latest, name)


def list_experiments(client: MlflowClient, name: str) -> list[Experiment]:
    """Every experiment of ``name``, newest first."""
    return experiments_from(ledger.control_history(client, name, CONTROL), name)[::-1]


def find_experiment(client: MlflowClient, name: str, experiment_id: str) -> Experiment | None:
    return next((e for e in list_experiments(client, name) if e.id == experiment_id), None)
