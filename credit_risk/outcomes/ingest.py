"""Load outcomes: read the decisions they refer to, check every row, store the good ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credit_risk.decision_log.reader import LogDirs
from credit_risk.outcomes.checks import Checked, check_outcomes
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.outcomes.table import OutcomeTable, StoreResult
from credit_risk.schema import DataValidationError, TargetSpec


@dataclass(frozen=True)
class LoadReport:
    rows: int
    result: StoreResult | None  # None: nothing was stored
    rejects: pd.DataFrame

    def line(self) -> str:
        stored = self.result or StoreResult(0, 0, 0, None, "")
        return (
            f"{self.rows} row(s): {stored.added} new outcome(s), {stored.corrected} correction(s), "
            f"{stored.unchanged} already stored, {len(self.rejects)} rejected"
        )


def _referenced(log_dir: LogDirs, raw: pd.DataFrame, model_name: str) -> pa.Table:
    """The logged decisions the rows could refer to (by request_id or applicant_id)."""
    decisions = read_decisions(log_dir, model_name=model_name, columns=["request_id", "applicant_id", "scored_at"])
    wanted = [
        pc.unique(pa.array(raw[c], from_pandas=True).cast(pa.string())).drop_null()
        for c in ("request_id", "applicant_id")
        if c in raw.columns
    ]
    if not wanted:
        return decisions.slice(0, 0)
    ids = pa.concat_arrays(wanted)
    if len(ids) * 4 > decisions.num_rows:  # a large load uses most decisions: filtering costs more than it saves
        return decisions
    keep = pc.or_(pc.is_in(decisions["request_id"], ids), pc.is_in(decisions["applicant_id"], ids).fill_null(False))
    return decisions.filter(keep)


def check_rows(
    raw: pd.DataFrame,
    *,
    log_dir: LogDirs,
    model_name: str,
    target: TargetSpec,
    applicant_id: Callable[[str], str] | None = str,
) -> Checked:
    """Check rows against the decisions ``model_name`` logged (nothing is stored).

    ``applicant_id`` turns a clear applicant id into the log's (its keyed hash when the log hashes it,
    :func:`~credit_risk.decision_log.privacy.applicant_id_as_logged`), so rows by applicant still join
    and the outcomes table holds no clearer copy than the log."""
    if applicant_id is not None and applicant_id is not str and "applicant_id" in raw.columns:
        raw = raw.assign(applicant_id=[applicant_id(v) if _given(v) else v for v in raw["applicant_id"]])
    return check_outcomes(raw, _referenced(log_dir, raw, model_name), target)


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value) != ""


def load_outcomes(
    raw: pd.DataFrame,
    *,
    log_dir: LogDirs,
    model_name: str,
    table: OutcomeTable,
    target: TargetSpec,
    source: str,
    applicant_id: Callable[[str], str] | None = str,
) -> LoadReport:
    """Store the rows that pass; the refused ones come back in ``rejects`` with their row and rule."""
    checked = check_rows(raw, log_dir=log_dir, model_name=model_name, target=target, applicant_id=applicant_id)
    result = table.store(checked.accepted, source=source) if checked.accepted.num_rows else None
    return LoadReport(len(raw), result, checked.rejects)


def read_outcome_file(path: Path) -> pd.DataFrame:
    """A CSV (every value as text) or Parquet file of outcome rows."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: outcomes file not found")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV or Parquet file: {exc}") from exc
