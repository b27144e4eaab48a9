"""The realized-performance summary: one typed model for its writer, the API and the UI.

``pipelines/performance/`` writes it (atomically, as JSON) after each run;
``GET /v1/performance`` serves it; the UI's Performance page draws it. Every
figure is computed on matured decisions only (older than the maturity window)
and, for outcome-based figures, only on those with an outcome: mostly approved
applicants, since declined ones never get a loan (see ``SELECTION_NOTE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_risk.config import PerformanceConfig

SUMMARY_VERSION = 1

SELECTION_NOTE = (
    "Outcomes exist mostly for approved applicants: declined ones never got a loan, so their outcome is "
    "unknown. Realized AUC, KS, Brier, calibration and bad rates describe the population that was approved "
    "(and referred applicants who were booked), not everyone who applied; see coverage by decision."
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Model):
    start: str | None  # first decision date counted (UTC), None: the log's first
    end: str  # last decision date counted: at most as_of - maturity_days


class Coverage(_Model):
    """Decisions of one kind, how many have an outcome, and the bad rate among those."""

    decisions: int
    with_outcome: int
    share_with_outcome: float | None
    bad_rate: float | None


class BandFigures(_Model):
    """One risk band: its predicted range, mean predicted and observed bad rate."""

    band: str
    min_probability: float
    max_probability: float
    decisions: int
    with_outcome: int
    predicted: float | None  # mean P(default) of the band's decisions with an outcome
    observed: float | None  # their observed bad rate
    outside_by: float | None  # how far the observed rate is outside [min, max] (0: inside)


class CalibrationBin(_Model):
    bin: int
    n: int
    predicted: float
    observed: float


class Vintage(_Model):
    """Decisions of one month (UTC), followed as they mature."""

    month: str
    decisions: int
    with_outcome: int
    bad_rate: float | None
    auc: float | None
    bad_rate_by_band: dict[str, float | None]


class Curve(_Model):
    fpr: list[float]
    tpr: list[float]


class VersionPerformance(_Model):
    """Realized figures of one model version beside its holdout figures at training."""

    decisions: int
    with_outcome: int
    share_with_outcome: float | None
    coverage_by_decision: dict[str, Coverage]
    approval_rate: float | None
    bad_rate: float | None
    auc: float | None
    gini: float | None
    ks: float | None
    brier: float | None
    mean_predicted: float | None
    calibration_in_the_large: float | None  # observed bad rate minus mean predicted
    calibration_slope: float | None  # logistic slope of the outcome on logit(p): 1 is ideal
    bands: list[BandFigures]
    deciles: list[CalibrationBin]
    vintages: list[Vintage]
    holdout: dict[str, float]  # the version's own holdout figures at training (roc_auc, gini, ks, brier...)
    roc: Curve | None = None


class PerformanceAlert(_Model):
    version: str
    subject: str  # "auc", "auc_drop" or "band <name>"
    message: str
    value: float
    threshold: float


class PerformanceSummary(_Model):
    """``GET /v1/performance``: ``{"versions": {"<v>": {"decisions", "with_outcome", "auc", "ks", "brier", ...}}}``."""

    summary_version: int = SUMMARY_VERSION
    generated_at: str
    as_of: str
    maturity_days: int
    window: Window
    model_name: str
    status: Literal["ok", "alert", "no_data", "insufficient_data"]
    alerts: list[PerformanceAlert]
    exit_code: int = Field(ge=0, le=2)
    outcomes_digest: str
    versions: dict[str, VersionPerformance]
    selection_note: str = SELECTION_NOTE
    # duplicate log rows (same request id and time: an older release's) counted once, not twice
    duplicates_dropped: int = Field(default=0, ge=0)
    mlflow_run_id: str | None = None
    # the oldest logged decision and the day it matures: what "no data yet" waits for
    first_decision_on: str | None = None
    first_matures_on: str | None = None

    def maturity_note(self) -> str | None:
        """Why there are no figures yet and how to see some now, in a sentence; None when there are figures."""
        if self.status not in ("no_data", "insufficient_data"):
            return None
        days = "1 day" if self.maturity_days == 1 else f"{self.maturity_days} days"
        if self.first_decision_on is None:
            return "No decision has been logged yet: score applicants first, then load their outcomes."
        if self.status == "no_data":
            lead = (
                f"No decision has matured yet: a decision counts once it is {days} old, and the first one "
                f"(made on {self.first_decision_on}) matures on {self.first_matures_on}."
            )
        else:
            lead = f"Too few matured decisions with an outcome for alerts (a decision counts once it is {days} old)."
        return (
            f"{lead} To see figures now, run the report as of a later date (as_of) or with a shorter "
            "maturity (maturity_days=0); those figures count young loans as good and are not for decisions."
        )


def summary_path(config: PerformanceConfig, log_dir: Path, root: Path) -> Path:
    """Where the performance job writes, and the API reads, the latest summary."""
    if config.summary_path is not None:
        return config.summary_path if config.summary_path.is_absolute() else root / config.summary_path
    return Path(log_dir).parent / "performance" / "latest.json"
