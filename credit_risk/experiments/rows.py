"""The experiment's rows: its logged decisions, each with its outcome once matured."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from credit_risk.decision_log.record import log_columns
from credit_risk.experiments.model import Experiment
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.outcomes.table import OutcomeTable

COLUMNS = (
    "request_id",
    "scored_at",
    "model_name",
    "model_version",
    "probability",
    "score",
    "risk_band",
    "decision",
    "latency_ms",
    "experiment_id",
    "experiment_arm",
    "shadow_version",
    "shadow_probability",
    "shadow_score",
    "shadow_risk_band",
    "shadow_decision",
)
_SCHEMA = log_columns(*COLUMNS)  # typed as the log writes them; a name that is no column fails at import


def read_rows(
    log_dir: Path,
    outcomes_dir: Path | None,
    experiment: Experiment,
    *,
    as_of: datetime,
    maturity_days: int,
) -> pd.DataFrame:
    """The experiment's logged decisions, each with its outcome ``label`` once matured (else NaN)."""
    schema = _SCHEMA
    start = datetime.fromisoformat(experiment.started_at).date() if experiment.started_at else date.min
    end = datetime.fromisoformat(experiment.stopped_at).date() if experiment.stopped_at else as_of.date()
    table = read_decisions(log_dir, model_name=experiment.model_name, start=start, end=end, schema=schema)
    table = table.filter(pc.equal(table["experiment_id"], experiment.id))
    frame = table.to_pandas()
    frame["label"] = np.nan
    if outcomes_dir is None or not Path(outcomes_dir).is_dir() or frame.empty:
        return frame
    current = OutcomeTable(Path(outcomes_dir)).current().to_pandas()
    if current.empty:
        return frame
    current = current[pd.to_datetime(current["observed_at"], utc=True) <= as_of]
    labels = dict(zip(current["request_id"], current["label"], strict=True))
    matured = pd.to_datetime(frame["scored_at"], utc=True) <= as_of - timedelta(days=maturity_days)
    frame["label"] = [
        labels.get(rid, np.nan) if ok else np.nan for rid, ok in zip(frame["request_id"], matured, strict=True)
    ]
    return frame
