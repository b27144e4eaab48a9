"""``model_config.yaml`` as a whole: one section per part, each with its defaults.

The sections are declared in :mod:`.policy`, :mod:`.service`, :mod:`.monitoring` and
:mod:`.oversight`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen
from credit_risk.config.monitoring import MonitoringConfig, OutcomesConfig, PerformanceConfig
from credit_risk.config.oversight import AuditConfig, NoticesConfig, ReviewConfig
from credit_risk.config.policy import (
    DEFAULT_RISK_BANDS,
    DecisionPolicy,
    ExperimentsConfig,
    PromotionGates,
    RecourseConfig,
    RegistryConfig,
    RiskBand,
    ScorecardConfig,
)
from credit_risk.config.service import PredictionLogConfig, SecurityConfig, ServingConfig, UIConfig


class ModelConfig(_Frozen):
    """``model_config.yaml``: what is served and how decisions are made."""

    registry: RegistryConfig = RegistryConfig()
    decision: DecisionPolicy = DecisionPolicy()
    scorecard: ScorecardConfig = ScorecardConfig()
    risk_bands: tuple[RiskBand, ...] = Field(
        default=DEFAULT_RISK_BANDS,
        min_length=1,
        description="Risk bands by probability of default, best first; the last must reach 1.0.",
    )
    promotion: PromotionGates = PromotionGates()
    serving: ServingConfig = ServingConfig()
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
    performance: PerformanceConfig = PerformanceConfig()
    ui: UIConfig = UIConfig()
    notices: NoticesConfig = NoticesConfig()
    audit: AuditConfig = AuditConfig()
    experiments: ExperimentsConfig = ExperimentsConfig()
    recourse: RecourseConfig = RecourseConfig()
    security: SecurityConfig = SecurityConfig()
    review: ReviewConfig = ReviewConfig()

    @model_validator(mode="after")
    def _bands_cover_all(self) -> ModelConfig:
        edges = [band.max_probability for band in self.risk_bands]
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            raise ValueError("risk_bands must be in increasing max_probability order")
        if edges[-1] != 1.0:
            raise ValueError("the last risk band must have max_probability 1.0")
        return self
