"""Typed configuration: read once at an entry point, passed down as frozen objects.

Each YAML file in ``config/`` maps to one model here, and every key has its
default in the model: a file states only what differs (``features.yaml``, the
feature schema, is always the lender's own). Unknown keys are refused and a bad
value fails at start with a message that names the file and the key.
Environment variables are only for what differs between deployments
(:class:`Settings`). The parts, each importable from here:

- :mod:`.base`: the error, the frozen base model, the project's paths;
- :mod:`.policy`: registry, decision policy, scorecard scaling, risk bands, promotion gates,
  experiments, recourse;
- :mod:`.service`: the scoring service, the prediction log, the UI, security;
- :mod:`.monitoring`: drift monitoring, outcomes, realized performance;
- :mod:`.oversight`: adverse-action notices, audit, human review and its reason codes;
- :mod:`.model`: ``model_config.yaml`` as a whole (:class:`ModelConfig`);
- :mod:`.training`: ``training.yaml`` (:class:`TrainingConfig`, the candidates and their grid);
- :mod:`.settings`: the environment (:class:`Settings`);
- :mod:`.project`: one folder read into a :class:`ProjectConfig`, the models listed for the
  reference page, and ``python -m credit_risk.config --show``.
"""

from __future__ import annotations

from credit_risk.config.base import DEFAULT_CONFIG_DIR, MIN_SECRET_LENGTH, PROJECT_ROOT, ConfigError
from credit_risk.config.model import ModelConfig
from credit_risk.config.monitoring import MonitoringConfig, OutcomesConfig, PerformanceConfig
from credit_risk.config.oversight import (
    CFPB,
    DEFAULT_REASON_CODES,
    ECOA_NOTICE,
    EXAMPLE_LENDER,
    AuditConfig,
    Lender,
    NoticesConfig,
    ReasonCode,
    ReviewConfig,
)
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
from credit_risk.config.project import (
    ProjectConfig,
    configuration_models,
    field_description,
    load_project_config,
    main,
    parse_config_file,
)
from credit_risk.config.service import PredictionLogConfig, SecurityConfig, ServingConfig, UIConfig
from credit_risk.config.settings import Settings
from credit_risk.config.training import (
    DEFAULT_CANDIDATES,
    CandidatesConfig,
    CVConfig,
    DataConfig,
    EvaluationConfig,
    LogisticParams,
    ProductionDataConfig,
    QuickSearchConfig,
    ScorecardParams,
    TrainingConfig,
    XGBoostParams,
)

__all__ = [
    "CFPB",
    "DEFAULT_CANDIDATES",
    "DEFAULT_CONFIG_DIR",
    "DEFAULT_REASON_CODES",
    "DEFAULT_RISK_BANDS",
    "ECOA_NOTICE",
    "EXAMPLE_LENDER",
    "MIN_SECRET_LENGTH",
    "PROJECT_ROOT",
    "AuditConfig",
    "CVConfig",
    "CandidatesConfig",
    "ConfigError",
    "DataConfig",
    "DecisionPolicy",
    "EvaluationConfig",
    "ExperimentsConfig",
    "Lender",
    "LogisticParams",
    "ModelConfig",
    "MonitoringConfig",
    "NoticesConfig",
    "OutcomesConfig",
    "PerformanceConfig",
    "PredictionLogConfig",
    "ProductionDataConfig",
    "ProjectConfig",
    "PromotionGates",
    "QuickSearchConfig",
    "ReasonCode",
    "RecourseConfig",
    "RegistryConfig",
    "ReviewConfig",
    "RiskBand",
    "ScorecardConfig",
    "ScorecardParams",
    "SecurityConfig",
    "ServingConfig",
    "Settings",
    "TrainingConfig",
    "UIConfig",
    "XGBoostParams",
    "configuration_models",
    "field_description",
    "load_project_config",
    "main",
    "parse_config_file",
]
