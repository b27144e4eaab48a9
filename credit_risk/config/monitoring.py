"""``model_config.yaml``: watching the served model over time.

The drift monitor, the loan outcomes loaded back, and the realized performance they give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen


class MonitoringConfig(_Frozen):
    """The drift monitor (``mlflow run . -e monitor``): PSI bands, alerting, fairness."""

    psi_moderate: float = Field(default=0.10, gt=0, description="PSI from which a shift is moderate.")
    psi_major: float = Field(default=0.25, gt=0, description="PSI from which a shift is major.")
    alert_on: Literal["none", "moderate", "major"] = Field(
        default="major", description="The level that makes the monitor exit 2."
    )
    min_disparate_impact: float = Field(
        default=0.80, ge=0, le=1, description="Approval-rate ratio across protected groups below which to alert."
    )
    fairness_alert_level: Literal["moderate", "major"] = Field(
        default="major", description="The level a disparate impact below min_disparate_impact counts as."
    )
    window_days: int = Field(default=7, ge=1, description="Default window: the last N days (UTC), today included.")
    min_rows: int = Field(
        default=200, ge=1, description="Fewer logged rows: figures reported, no alert raised (too noisy)."
    )
    experiment: str = Field(default="credit-risk-monitoring", description="The MLflow experiment of monitor runs.")
    summary_path: Path | None = Field(
        default=None, description="The latest summary; null: <prediction log dir>/../monitoring/latest.json."
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringConfig:
        if self.psi_major < self.psi_moderate:
            raise ValueError("psi_major must be >= psi_moderate")
        return self


class OutcomesConfig(_Frozen):
    """Loan outcomes loaded back (``mlflow run . -e outcomes``, ``POST /v1/outcomes``)."""

    directory: Path | None = Field(
        default=None, description="The outcomes table; null: <prediction log dir>/../outcomes (logs/outcomes)."
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Rows per POST /v1/outcomes.")
    maturity_days: int = Field(
        default=365,
        ge=0,
        description="A decision counts in realized figures and retraining once this old "
        "(bad = 90+ days past due within 12 months).",
    )


class PerformanceConfig(_Frozen):
    """Realized performance (``mlflow run . -e performance``): exit 2 when an alert is raised."""

    min_auc: float = Field(default=0.65, ge=0, le=1, description="Realized ROC-AUC below this floor: alert.")
    max_auc_drop: float = Field(
        default=0.05, ge=0, le=1, description="Realized ROC-AUC this far below the version's holdout AUC: alert."
    )
    band_margin: float = Field(
        default=0.05, ge=0, le=1, description="Observed bad rate outside its band's predicted range by more: alert."
    )
    min_outcomes: int = Field(
        default=200, ge=1, description="Fewer outcomes for a version: figures reported, no alert."
    )
    min_band_outcomes: int = Field(default=50, ge=1, description="Fewer outcomes in a band: no band alert.")
    experiment: str = Field(default="credit-risk-performance", description="The MLflow experiment of the runs.")
    summary_path: Path | None = Field(
        default=None, description="The latest summary; null: <prediction log dir>/../performance/latest.json."
    )
