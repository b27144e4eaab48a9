"""Matured decisions joined with their current outcome (pyarrow's hash join)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from credit_risk.decision_log.reader import LogDirs
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.outcomes.table import OutcomeTable

OUTCOME_COLUMNS = ["request_id", "outcome", "label", "observed_at"]


def maturity_cutoff(as_of: datetime, maturity_days: int) -> datetime:
    """Decisions made at or before this instant are old enough to count."""
    return as_of - timedelta(days=maturity_days)


def matured_decisions(
    log_dir: LogDirs,
    table: OutcomeTable,
    *,
    model_name: str,
    as_of: datetime,
    maturity_days: int,
    start: date | None = None,
    end: date | None = None,
    schema: pa.Schema | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Decisions older than the maturity window (within [start, end] dates), each with its current outcome
    as known at ``as_of`` (``label`` null: no outcome). An outcome observed after ``as_of`` is not known yet."""
    cutoff = maturity_cutoff(as_of, maturity_days)
    last_day = min(end, cutoff.date()) if end else cutoff.date()
    decisions = read_decisions(
        log_dir, start=start, end=last_day, model_name=model_name, schema=schema, columns=columns
    )
    decisions = decisions.filter(pc.less_equal(decisions["scored_at"], pa.scalar(cutoff, decisions["scored_at"].type)))
    current = table.current().select(OUTCOME_COLUMNS)
    current = current.filter(pc.less_equal(current["observed_at"], pa.scalar(as_of, current["observed_at"].type)))
    return decisions.join(current, keys="request_id", join_type="left outer")
