"""The case store's tables (SQLAlchemy Core): cases, their history, and the log files already read.

The schema itself is created and changed only by the Alembic migrations beside this module
(``migrations/``); these definitions are what the store's queries are written against, and a
test checks that the migrated database and these tables agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

STATES = ("open", "claimed", "decided", "withdrawn")
KINDS = ("referral", "contest")
FINAL_DECISIONS = ("approve", "decline")

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # a referral's key is its decision's request id; a contest's is "contest:<request id>": one each
    Column("case_key", String(160), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("request_id", String(128), nullable=False),  # the decision the case is about
    Column("applicant_id", String(128)),
    Column("model_name", String(200)),
    Column("model_version", String(32)),
    Column("policy_version", String(64)),
    Column("probability", Float),
    Column("score", Integer),
    Column("risk_band", String(32)),
    Column("decision", String(16)),  # the decision answered (review when referred)
    Column("model_decision", String(16)),  # the model's recommendation (differs when automation was paused)
    Column("reasons", JSON, nullable=False),  # the model's reason codes, largest first
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("claimed_by", String(200)),
    Column("claim_expires_at", DateTime(timezone=True)),
    Column("final_decision", String(16)),
    Column("reason_code", String(64)),
    Column("note", Text),
    Column("override", Integer),  # 1: the final decision differs from the model's recommendation
    Column("decided_by", String(200)),
    Column("decided_at", DateTime(timezone=True)),
    Column("contest_reason", Text),  # a contest: what the applicant said
    UniqueConstraint("case_key", name="uq_cases_case_key"),
)
Index("ix_cases_state_due", cases.c.state, cases.c.due_at)
Index("ix_cases_request", cases.c.request_id)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),  # opened, claimed, released, decided, contested
    Column("detail", JSON, nullable=False),
)
Index("ix_case_events_case", case_events.c.case_id, case_events.c.id)

# the decision log's files whose referrals are already cases: each file is read once
log_files = Table(
    "case_log_files",
    metadata,
    Column("path", String(400), primary_key=True),
    Column("read_at", DateTime(timezone=True), nullable=False),
    Column("cases", Integer, nullable=False),
)
