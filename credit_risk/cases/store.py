"""The case store: cases in a real database (SQLite beside the log, or PostgreSQL), through SQLAlchemy.

Its parts: :mod:`.database` (the engine, transactions, migrations), :mod:`.intake` (opening cases,
as answered and from the decision log) and this module (reading the queue and a case, acting on
one, the figures).

Claims and decisions are conditional updates (``UPDATE ... WHERE state/claim matches``) whose
row count says who won: two reviewers claiming one case at once, on any worker or instance,
get exactly one claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from credit_risk.cases import policy
from credit_risk.cases.database import MIGRATIONS, VERSION_TABLE, default_path, default_url, iso, to_datetime, utc
from credit_risk.cases.intake import CaseIntake
from credit_risk.cases.models import case_events, cases
from credit_risk.config import ReviewConfig

__all__ = [
    "ACTIVE",
    "MIGRATIONS",
    "VERSION_TABLE",
    "CaseConflictError",
    "CaseNotFoundError",
    "CaseStore",
    "QueuePage",
    "default_path",
    "default_url",
    "open_store",
]

ACTIVE = ("open", "claimed")


class CaseNotFoundError(LookupError):
    """No case has this id."""


class CaseConflictError(RuntimeError):
    """The case is in a state that refuses the action (claimed by another reviewer, decided)."""

    def __init__(self, message: str, case: dict[str, Any]) -> None:
        super().__init__(message)
        self.case = case


@dataclass(frozen=True)
class QueuePage:
    cases: list[dict[str, Any]]
    total: int


class CaseStore(CaseIntake):
    """Cases of one deployment. Thread-safe (a connection pool); every method blocks: call off the loop."""

    # ------------------------------------------------------------ reading

    def queue(
        self,
        *,
        state: str | None = None,
        band: str | None = None,
        overdue: bool | None = None,
        page: int = 1,
        page_size: int = 50,
        now: datetime | None = None,
    ) -> QueuePage:
        """Cases, oldest due first: the active ones (open, claimed) unless a state is asked for."""
        now = now or datetime.now(UTC)
        wanted = [cases.c.state == state] if state else [cases.c.state.in_(ACTIVE)]
        if band:
            wanted.append(cases.c.risk_band == band)
        if overdue is True:
            wanted += [cases.c.due_at < now, cases.c.state.in_(ACTIVE)]
        elif overdue is False:
            wanted.append(or_(cases.c.due_at >= now, cases.c.state.not_in(ACTIVE)))
        condition = and_(*wanted)
        with self.engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(cases).where(condition)).scalar_one()
            rows = connection.execute(
                select(cases)
                .where(condition)
                .order_by(cases.c.due_at, cases.c.id)
                .limit(page_size)
                .offset((page - 1) * page_size)
            ).mappings()
            return QueuePage([self._public(dict(row), now) for row in rows], int(total))

    def get(self, case_id: int, *, now: datetime | None = None) -> dict[str, Any]:
        """One case with its full history; :class:`CaseNotFoundError` when there is none."""
        with self.engine.connect() as connection:
            return self._read(connection, case_id, now or datetime.now(UTC))

    def for_decision(self, request_id: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """A decision's cases (its referral, its contest), oldest first, with their histories."""
        now = now or datetime.now(UTC)
        with self.engine.connect() as connection:
            ids = connection.execute(
                select(cases.c.id).where(cases.c.request_id == request_id).order_by(cases.c.id)
            ).scalars()
            return [self._read(connection, case_id, now) for case_id in list(ids)]

    def _read(self, connection: Connection, case_id: int, now: datetime) -> dict[str, Any]:
        row = connection.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            raise CaseNotFoundError(f"no case has id {case_id}")
        body = self._public(dict(row), now)
        history = connection.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        ).mappings()
        body["history"] = [
            {"at": iso(e["at"]), "actor": e["actor"], "action": e["action"], **dict(e["detail"] or {})} for e in history
        ]
        return body

    def _public(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        """A case as the API shows it: times in ISO UTC, overdue computed, a lapsed claim shown as open."""
        due = utc(row["due_at"])
        expires = utc(row["claim_expires_at"])
        state = row["state"]
        claimed_by = row["claimed_by"]
        if state == "claimed" and expires is not None and expires < now:
            state, claimed_by, expires = "open", None, None  # a lapsed claim: anyone may take it
        return {
            "id": row["id"],
            "kind": row["kind"],
            "request_id": row["request_id"],
            "applicant_id": row["applicant_id"],
            "state": state,
            "model": {"name": row["model_name"], "version": row["model_version"]},
            "decision_policy_version": row["policy_version"],
            "probability_of_default": row["probability"],
            "score": row["score"],
            "risk_band": row["risk_band"],
            "decision": row["decision"],
            "model_decision": row["model_decision"],
            "reasons": list(row["reasons"] or []),
            "scored_at": iso(row["scored_at"]),
            "opened_at": iso(row["opened_at"]),
            "due_at": iso(due),
            "overdue": state in ACTIVE and due is not None and due < now,
            "claimed_by": claimed_by,
            "claim_expires_at": iso(expires),
            "final_decision": row["final_decision"],
            "reason_code": row["reason_code"],
            "note": row["note"],
            "override": None if row["override"] is None else bool(row["override"]),
            "decided_by": row["decided_by"],
            "decided_at": iso(row["decided_at"]),
            "contest_reason": row["contest_reason"],
        }

    # ------------------------------------------------------------ acting

    def claim(self, case_id: int, actor: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Take a case for ``claim_minutes``: exactly one of several reviewers at once wins."""
        now = now or datetime.now(UTC)
        expires = now + timedelta(minutes=self.config.claim_minutes)
        with self._writing() as connection:
            won = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, self._claimable(actor, now))
                .values(state="claimed", claimed_by=actor, claim_expires_at=expires)
            ).rowcount
            if won == 1:
                self._event(connection, case_id, actor, "claimed", {"until": iso(expires)}, now)
        return self._after(case_id, won, actor, "claim", now)

    def release(self, case_id: int, actor: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Give a claimed case back to the queue (only its holder may)."""
        now = now or datetime.now(UTC)
        with self._writing() as connection:
            done = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.state == "claimed", cases.c.claimed_by == actor)
                .values(state="open", claimed_by=None, claim_expires_at=None)
            ).rowcount
            if done == 1:
                self._event(connection, case_id, actor, "released", {}, now)
        return self._after(case_id, done, actor, "release", now)

    def decide(
        self,
        case_id: int,
        actor: str,
        *,
        decision: str,
        reason_code: str | None,
        note: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Record the final decision: the holder of the claim, or anyone on an open case (claimed at once).

        :class:`policy.CaseRuleError` when the rules refuse it (nothing changes)."""
        now = now or datetime.now(UTC)
        case = self.get(case_id, now=now)
        final = policy.check_final(case, decision, reason_code, note, self.config)
        with self._writing() as connection:
            done = connection.execute(
                update(cases)
                .where(cases.c.id == case_id, self._claimable(actor, now))
                .values(
                    state="decided",
                    claimed_by=None,
                    claim_expires_at=None,
                    final_decision=final.decision,
                    reason_code=final.reason_code,
                    note=final.note,
                    override=int(final.override),
                    decided_by=actor,
                    decided_at=now,
                )
            ).rowcount
            if done == 1:
                detail = {"decision": final.decision, "reason_code": final.reason_code, "note": final.note}
                self._event(connection, case_id, actor, "decided", {**detail, "override": final.override}, now)
        return self._after(case_id, done, actor, "decide", now)

    def contest(
        self, record: dict[str, Any], actor: str, *, reason: str, note: str | None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Open a contest of a logged decision (GDPR Art. 22(3)); one per decision, the record unchanged."""
        now = now or datetime.now(UTC)
        row = {**self.case_row(record, kind="contest", now=now), "contest_reason": reason}
        with self._writing() as connection:
            inserted = self._insert_case(connection, row)
            if inserted is not None:
                self._event(connection, inserted, actor, "contested", {"reason": reason, "note": note}, now)
        if inserted is None:
            existing = self.for_decision(str(record["request_id"]), now=now)
            contest = next(case for case in existing if case["kind"] == "contest")
            raise CaseConflictError(
                f"decision {record['request_id']!r} is already contested (case {contest['id']})", contest
            )
        return self.get(inserted, now=now)

    def _claimable(self, actor: str, now: datetime) -> Any:
        """Open, or claimed by ``actor``, or claimed by someone whose claim has lapsed."""
        return or_(
            cases.c.state == "open",
            and_(cases.c.state == "claimed", or_(cases.c.claimed_by == actor, cases.c.claim_expires_at < now)),
        )

    def _after(self, case_id: int, changed: int, actor: str, action: str, now: datetime) -> dict[str, Any]:
        case = self.get(case_id, now=now)
        if changed == 1:
            return case
        if case["state"] == "decided":
            why = f"case {case_id} is already decided ({case['final_decision']} by {case['decided_by']})"
        elif case["state"] == "claimed":
            why = f"case {case_id} is claimed by {case['claimed_by']} until {case['claim_expires_at']}"
        elif action == "release":
            why = f"case {case_id} is not claimed by {actor}"
        else:
            why = f"case {case_id} is {case['state']}"
        raise CaseConflictError(f"cannot {action}: {why}", case)

    # ------------------------------------------------------------ figures

    def gauges(self, *, now: datetime | None = None) -> dict[str, float]:
        """For /metrics and the monitor: active and overdue cases, the oldest active case's age."""
        now = now or datetime.now(UTC)
        with self.engine.connect() as connection:
            active = connection.execute(
                select(func.count(), func.min(cases.c.opened_at)).where(cases.c.state.in_(ACTIVE))
            ).one()
            overdue = connection.execute(
                select(func.count()).where(cases.c.state.in_(ACTIVE), cases.c.due_at < now)
            ).scalar_one()
        oldest = utc(to_datetime(active[1])) if active[1] is not None else None
        return {
            "open": float(active[0]),
            "overdue": float(overdue),
            "oldest_age_seconds": (now - oldest).total_seconds() if oldest else 0.0,
        }

    def decided(self) -> list[dict[str, Any]]:
        """Every decided referral (request id, band, the model's and the final decision, who, why, when)."""
        columns = [
            cases.c.request_id,
            cases.c.risk_band,
            cases.c.model_decision,
            cases.c.final_decision,
            cases.c.override,
            cases.c.decided_by,
            cases.c.reason_code,
            cases.c.due_at,
            cases.c.decided_at,
            cases.c.kind,
        ]
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).where(cases.c.state == "decided").order_by(cases.c.id))
            return [
                {**dict(row._mapping), "due_at": utc(row.due_at), "decided_at": utc(row.decided_at)} for row in rows
            ]


def open_store(config: ReviewConfig, log_dir: Path, *, migrate: bool = True) -> CaseStore:
    """The deployment's case store (``review.database_url``, else SQLite beside the log), migrated."""
    store = CaseStore(config.database_url or default_url(log_dir), config, log_dir=log_dir)
    if migrate:
        store.migrate()
    return store
