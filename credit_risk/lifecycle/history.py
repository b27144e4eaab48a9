"""The alias history: every move of an alias, recorded before it happens, ordered, none lost.

Each move is a registered-model tag ``alias_history.<NNNNNN>.<token>`` holding
one :class:`AliasEvent` (JSON). MLflow offers no transaction or compare-and-set
on tags, so a move takes the next sequence number like this:

1. wait until no entry is open (``claim`` or ``intent``); an open entry older
   than ``stale_after`` seconds was left by a crash and is reconciled first;
2. write a ``claim`` for number N+1 under a key no other writer can use (a
   random token), then read the tags back: if any other open entry, or any
   other entry numbered N+1 or more, is there, withdraw the claim and retry
   after a random pause. Of two writers that claim at once, the one that reads
   last sees both claims, so at most one finds itself alone;
3. the claim becomes an ``intent`` (who, from, to, why), the alias moves, and
   the entry becomes ``completed`` (``aborted`` if the move failed).

The open entry is the lock: while it exists no other move starts, so the
order of the history is the order of the moves and ``from_version`` is what
the alias really held. A crash after step 2 leaves an ``intent`` in the
history, visible as such; the next move (or :func:`reconcile`) settles it
from the alias itself: ``completed`` if the alias holds its target, else
``aborted``, with a note saying it was reconciled.
"""

from __future__ import annotations

import getpass
import json
import logging
import random
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from credit_risk import registry

log = logging.getLogger(__name__)

HISTORY_TAG_PREFIX = "alias_history."
OPEN_STATES = ("claim", "intent")
STALE_AFTER_SECONDS = 30.0  # an alias move takes milliseconds once its entry is claimed
WAIT_SECONDS = 60.0  # how long a move waits for another one to finish before giving up
ANY_VERSION = object()  # ``expect_from`` default: the move does not depend on what the alias holds


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias. ``state``: intent (recorded, not yet confirmed), completed, aborted."""

    sequence: int
    at: str
    alias: str
    from_version: str | None
    to_version: str
    action: str
    actor: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    state: str = "completed"
    completed_at: str | None = None
    note: str = ""


@dataclass(frozen=True)
class _Entry:
    key: str
    event: AliasEvent


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _age_seconds(at: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds()
    except ValueError:
        return float("inf")


def _entries(client: MlflowClient, name: str) -> list[_Entry]:
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    found = []
    for key, value in tags.items():
        if not key.startswith(HISTORY_TAG_PREFIX):
            continue
        data = json.loads(value)
        known = {k: v for k, v in data.items() if k in AliasEvent.__dataclass_fields__}
        found.append(_Entry(key, AliasEvent(**known)))  # entries of the old layout read as completed
    return sorted(found, key=lambda e: (e.event.sequence, e.event.at, e.key))


def _write(client: MlflowClient, name: str, entry: _Entry) -> None:
    client.set_registered_model_tag(name, entry.key, json.dumps(asdict(entry.event)))


def alias_history(client: MlflowClient, name: str) -> list[AliasEvent]:
    """Every recorded move, oldest first: completed, aborted, and intents not (yet) confirmed."""
    return [e.event for e in _entries(client, name) if e.event.state != "claim"]


def completed_moves(client: MlflowClient, name: str, alias: str) -> list[AliasEvent]:
    """The moves of ``alias`` that happened, oldest first."""
    return [e for e in alias_history(client, name) if e.alias == alias and e.state == "completed"]


def _settle(client: MlflowClient, name: str, entry: _Entry) -> AliasEvent | None:
    """Close an open entry left by a writer that stopped (crash, kill): from what the alias holds."""
    event = entry.event
    if event.state == "claim":  # a claim never moved anything: withdraw it
        client.delete_registered_model_tag(name, entry.key)
        return None
    held = registry.aliases_of(client, name).get(event.alias)
    happened = held == event.to_version
    settled = replace(
        event,
        state="completed" if happened else "aborted",
        completed_at=_now(),
        note=(
            f"reconciled at {_now()}: the writer never confirmed; the alias "
            + (f"holds version {held}, the intended one" if happened else f"holds {held}, not {event.to_version}")
        ),
    )
    _write(client, name, _Entry(entry.key, settled))
    log.warning("alias history #%d (%s) reconciled as %s", event.sequence, entry.key, settled.state)
    return settled


def reconcile(client: MlflowClient, name: str, *, stale_after: float = STALE_AFTER_SECONDS) -> list[AliasEvent]:
    """Settle every open entry older than ``stale_after`` seconds; return the intents settled."""
    settled = []
    for entry in _entries(client, name):
        if entry.event.state in OPEN_STATES and _age_seconds(entry.event.at) > stale_after:
            event = _settle(client, name, entry)
            if event is not None:
                settled.append(event)
    return settled


def _claim(client: MlflowClient, name: str, template: AliasEvent, *, stale_after: float, deadline: float) -> _Entry:
    """Take the next sequence number for ``template``: returns the entry, written as an intent's claim."""
    while True:
        entries = _entries(client, name)
        open_ = [e for e in entries if e.event.state in OPEN_STATES]
        stale = [e for e in open_ if _age_seconds(e.event.at) > stale_after]
        for entry in stale:
            _settle(client, name, entry)
        if not open_:
            number = max((e.event.sequence for e in entries), default=0) + 1
            mine = _Entry(
                f"{HISTORY_TAG_PREFIX}{number:06d}.{uuid.uuid4().hex}",
                replace(template, sequence=number, at=_now(), state="claim"),
            )
            _write(client, name, mine)
            rivals = [
                e
                for e in _entries(client, name)
                if e.key != mine.key and (e.event.state in OPEN_STATES or e.event.sequence >= number)
            ]
            if not rivals:
                return mine
            client.delete_registered_model_tag(name, mine.key)  # another writer claimed at once: retry
            if time.monotonic() > deadline:
                raise registry.RegistryError(f"could not take the next alias history number of {name!r}; try again")
        elif not stale and time.monotonic() > deadline:
            holder = open_[0].event
            raise registry.RegistryError(
                f"another move of {name!r} is in progress (#{holder.sequence}: {holder.alias} -> "
                f"{holder.to_version} by {holder.actor} since {holder.at}); try again"
            )
        time.sleep(random.uniform(0.01, 0.05))


def move_alias(
    client: MlflowClient,
    name: str,
    alias: str,
    version: str | int,
    *,
    action: str,
    reason: str,
    figures: dict[str, Any] | None = None,
    actor: str | None = None,
    expect_from: Any = ANY_VERSION,
    stale_after: float = STALE_AFTER_SECONDS,
    wait: float = WAIT_SECONDS,
) -> AliasEvent:
    """Point ``alias`` at ``version``, recorded in the history first (see the module's docstring).

    ``actor``: who asked (the API caller's identity; default the OS user, for
    jobs run by hand). ``expect_from``: the version the caller's decision was
    based on (None: no version); if the alias holds another one when the move
    gets its turn, the move is aborted and :class:`~credit_risk.registry.RegistryError` raised.
    """
    version = str(version)
    if registry.get_version(client, name, version) is None:
        raise registry.RegistryError(f"version {version} of {name!r} does not exist")
    template = AliasEvent(
        sequence=0,
        at="",
        alias=alias,
        from_version=None,
        to_version=version,
        action=action,
        actor=actor or getpass.getuser(),
        reason=reason,
        figures=figures or {},
    )
    entry = _claim(client, name, template, stale_after=stale_after, deadline=time.monotonic() + wait)
    held = registry.aliases_of(client, name).get(alias)
    entry = _Entry(entry.key, replace(entry.event, from_version=held, state="intent"))
    _write(client, name, entry)
    if expect_from is not ANY_VERSION and held != (None if expect_from is None else str(expect_from)):
        _finish(client, name, entry, "aborted", f"the alias moved meanwhile: it holds {held}, not {expect_from}")
        raise registry.RegistryError(
            f"{alias!r} of {name!r} moved while this {action} was prepared (it holds version {held}, "
            f"expected {expect_from}); nothing changed: try again"
        )
    try:
        client.set_registered_model_alias(name, alias, version)
    except Exception as exc:
        _finish(client, name, entry, "aborted", f"the alias move failed: {type(exc).__name__}: {str(exc)[:300]}")
        raise
    return _finish(client, name, entry, "completed", "")


def _finish(client: MlflowClient, name: str, entry: _Entry, state: str, note: str) -> AliasEvent:
    event = replace(entry.event, state=state, completed_at=_now(), note=note)
    _write(client, name, _Entry(entry.key, event))
    return event


def record_event(
    client: MlflowClient,
    name: str,
    *,
    subject: str,
    action: str,
    reason: str,
    figures: dict[str, Any] | None = None,
    actor: str | None = None,
    stale_after: float = STALE_AFTER_SECONDS,
    wait: float = WAIT_SECONDS,
) -> AliasEvent:
    """Record a change that moves no alias (the stop switch, an experiment, an approval) in the same
    ordered history, under ``subject`` in place of an alias: one ledger, one order, actor and reason."""
    template = AliasEvent(
        sequence=0,
        at="",
        alias=subject,
        from_version=None,
        to_version=str((figures or {}).get("version", "")),
        action=action,
        actor=actor or getpass.getuser(),
        reason=reason,
        figures=figures or {},
    )
    entry = _claim(client, name, template, stale_after=stale_after, deadline=time.monotonic() + wait)
    return _finish(client, name, entry, "completed", "")
