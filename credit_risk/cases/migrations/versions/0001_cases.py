"""Cases, their history, and the decision log's files already read.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("applicant_id", sa.String(128)),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("policy_version", sa.String(64)),
        sa.Column("probability", sa.Float),
        sa.Column("score", sa.Integer),
        sa.Column("risk_band", sa.String(32)),
        sa.Column("decision", sa.String(16)),
        sa.Column("model_decision", sa.String(16)),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True)),
        sa.Column("final_decision", sa.String(16)),
        sa.Column("reason_code", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("override", sa.Integer),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("contest_reason", sa.Text),
        sa.UniqueConstraint("case_key", name="uq_cases_case_key"),
    )
    op.create_index("ix_cases_state_due", "cases", ["state", "due_at"])
    op.create_index("ix_cases_request", "cases", ["request_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"])
    op.create_table(
        "case_log_files",
        sa.Column("path", sa.String(400), primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cases", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_log_files")
    op.drop_index("ix_case_events_case", "case_events")
    op.drop_table("case_events")
    op.drop_index("ix_cases_request", "cases")
    op.drop_index("ix_cases_state_due", "cases")
    op.drop_table("cases")
