"""Typed configuration: read once at an entry point, passed down as frozen objects.

Each YAML file in ``config/`` maps to one model here. Unknown keys are refused
and a bad value fails at start with a message that names the file and the key.
Environment variables are only for what differs between deployments
(:class:`Settings`).
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from credit_risk.schema import FeatureSchema

MIN_SECRET_LENGTH = 16  # role tokens and keys: shorter ones are refused at start
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- model_config.yaml


class RegistryConfig(_Frozen):
    model_name: str = Field(min_length=1)
    experiment: str = Field(min_length=1)
    serving_alias: str = Field(min_length=1)
    challenger_alias: str = Field(min_length=1)
    pinned_version: int | None = Field(default=None, ge=1)


class DecisionPolicy(_Frozen):
    policy_version: str = Field(min_length=1)
    approve_below: float = Field(gt=0, lt=1)
    decline_at_or_above: float = Field(gt=0, le=1)
    max_reasons: int = Field(ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> DecisionPolicy:
        if self.decline_at_or_above < self.approve_below:
            raise ValueError("decline_at_or_above must be >= approve_below")
        return self


class ScorecardConfig(_Frozen):
    points_at_reference_odds: float
    reference_odds: float = Field(gt=0)
    points_to_double_odds: float = Field(gt=0)

    @property
    def factor(self) -> float:
        return self.points_to_double_odds / math.log(2)

    @property
    def offset(self) -> float:
        return self.points_at_reference_odds - self.factor * math.log(self.reference_odds)


class RiskBand(_Frozen):
    name: str = Field(min_length=1)
    max_probability: float = Field(gt=0, le=1)


class PromotionGates(_Frozen):
    min_auc: float = Field(ge=0, le=1)
    max_auc_drop: float = Field(ge=0, le=1)
    min_disparate_impact: float = Field(ge=0, le=1)
    max_brier: float = Field(ge=0, le=1)
    # a promotion that passes the gates waits for a second person with the approver role (SR 11-7);
    # null: on exactly when CREDIT_RISK_APPROVER_TOKEN is configured
    require_approval: bool | None = None
    approval_hours: float = Field(default=72.0, gt=0)  # a pending request expires after this


class ExperimentsConfig(_Frozen):
    """Champion/challenger experiments (``POST /v1/admin/experiments``, ``mlflow run . -e experiment``)."""

    max_share: float = Field(default=0.5, gt=0, le=1)  # the largest challenger share a split may take
    min_per_arm: int = Field(default=100, ge=1)  # fewer applicants in an arm: "not yet enough to tell"
    min_outcomes_per_arm: int = Field(default=50, ge=1)  # fewer matured outcomes: no verdict on outcomes
    srm_p_value: float = Field(default=0.001, gt=0, lt=1)  # a chi-square p below this: sample-ratio mismatch
    confidence: float = Field(default=0.95, gt=0.5, lt=1)  # of every interval in the comparison
    bootstrap_rounds: int = Field(default=400, ge=50, le=10_000)  # realized AUC and bad rate intervals
    shadow_reasons: bool = False  # compute the challenger's reasons in a shadow (costs TreeSHAP per applicant)
    experiment: str = "credit-risk-experiments"  # the MLflow experiment of the report job's runs


_HOST_ENTRY = re.compile(r"\*|([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


class ServingConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    # /v1/registry and the validation reports: an answer is kept this long (anonymous floods cost one read)
    registry_read_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    max_body_bytes: int = Field(default=65536, ge=1024)  # POST bodies, except a batch's
    max_batch_body_bytes: int = Field(default=2_097_152, ge=1024)  # POST /v1/predict/batch (~2 KB per applicant)
    max_batch_size: int = Field(default=1000, ge=1)
    cors_origins: tuple[str, ...] = ()
    # Host headers answered (others get 400: DNS rebinding); each "name" or "name:port", "*" for any.
    # null: `host` (unless 0.0.0.0/::), localhost, 127.0.0.1 and [::1], and the address a request came in
    # on; a name without a port matches no port, `port`, or the port the request came in on
    allowed_hosts: tuple[str, ...] | None = None
    retry_seconds: float = Field(default=2.0, gt=0)  # registry re-check interval while no model is served
    warmup_rounds: int = Field(default=20, ge=1)  # example scorings before a version is switched in
    # a worker accepts requests once its first load is done (or failed), or after this
    startup_wait_seconds: float = Field(default=60.0, ge=0)
    # where scoring runs: "auto" = the threadpool for batches and XGBoost calls (they release the GIL),
    # the event loop for a single applicant on the numpy runtime (~100 us: cheaper than a thread hand-off);
    # "always" / "never" to compare
    offload_scoring: Literal["auto", "always", "never"] = "auto"
    # POST /v1/predict's common case answered in front of FastAPI's routing and middleware (same checks,
    # scoring, log, metrics; every refusal still through the framework); false to compare
    fast_path: bool = True
    prediction_log: bool = True  # hand every scored applicant to the prediction log writer
    drain_timeout_seconds: float = Field(default=30.0, gt=0)  # shutdown: time allowed to flush the log
    drain_grace_seconds: float = Field(default=1.0, ge=0)  # SIGTERM: not ready, keep serving this long, then stop
    # slow clients: a request body must arrive whole within this (408 otherwise); on shutdown in-flight
    # requests get this long before uvicorn closes them; past `max_concurrency` open connections (idle or
    # not) uvicorn answers 503, so a connection whose request headers have not arrived whole this long after
    # it opened (or after its previous answer) is closed (python -m serving.app)
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    graceful_shutdown_seconds: float = Field(default=15.0, gt=0)
    max_concurrency: int = Field(default=1024, ge=1)
    # one JSON line per request on stderr (method, path, status, ms), written by a background thread
    access_log: bool = False
    # single requests: "numpy" (the trees as arrays; probabilities and TreeSHAP reasons, verified against
    # XGBoost at load) or "xgboost" (inplace_predict and pred_contribs); large batches always use XGBoost
    tree_runtime: Literal["numpy", "xgboost"] = "numpy"

    @model_validator(mode="after")
    def _hosts_well_formed(self) -> ServingConfig:
        bad = [host for host in self.allowed_hosts or () if not _HOST_ENTRY.fullmatch(host)]
        if bad:
            raise ValueError(f"allowed_hosts: {bad}: expected a host name, an [IPv6] address or '*', optionally :port")
        return self


class PredictionLogConfig(_Frozen):
    directory: Path = Path("logs/predictions")
    flush_every_records: int = Field(default=1000, ge=1)
    flush_interval_seconds: float = Field(default=1.0, gt=0)
    queue_max_records: int = Field(default=100_000, ge=1)
    retention_days: int = Field(default=180, ge=1)
    serving_experiment: str = "credit-risk-serving"
    drop_fields: tuple[str, ...] = ()
    hash_fields: tuple[str, ...] = ()
    # "fsync": a response leaves only once its record is fsync'd to the write-ahead file (group commit);
    # "interval": the response does not wait, the write-ahead segment is synced when it closes
    durability: Literal["fsync", "interval"] = "fsync"
    # how long a request waits for its record's fsync before it answers 503 (a full queue refuses at once)
    submit_timeout_seconds: float = Field(default=2.0, gt=0)
    # group commit: under load (the previous batch found requests waiting) the fsync process gathers
    # requests this long before its fsync, so one fsync carries many records (0: never waits)
    group_commit_ms: float = Field(default=1.0, ge=0, le=50)
    upload_artifacts: bool = True  # copy closed files to the serving run in MLflow
    upload_retry_max_seconds: float = Field(default=60.0, gt=0)  # cap of the upload retry backoff
    # several instances may share one directory: each worker process writes under its own writer id,
    # "<writer_id>-<random>" (null: the host name; env CREDIT_RISK_WRITER_ID names one instance)
    writer_id: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.]+$")
    # a writer renews its lease every third of this; another host takes a dead writer's files over only
    # once its lease has expired (hosts' clocks must agree to well within it)
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    # where the readers (monitor, performance, outcomes, audit index, replay, retraining) read the log:
    # every listed directory, as one log (empty: the directory above); one per instance where instances
    # cannot share one location
    read_directories: tuple[Path, ...] = ()

    @model_validator(mode="after")
    def _privacy_disjoint(self) -> PredictionLogConfig:
        both = sorted(set(self.drop_fields) & set(self.hash_fields))
        if both:
            raise ValueError(f"fields both dropped and hashed: {both}")
        return self


class MonitoringConfig(_Frozen):
    psi_moderate: float = Field(default=0.10, gt=0)
    psi_major: float = Field(default=0.25, gt=0)
    alert_on: Literal["none", "moderate", "major"] = "major"
    min_disparate_impact: float = Field(default=0.80, ge=0, le=1)
    # the level a disparate impact below min_disparate_impact counts as
    fairness_alert_level: Literal["moderate", "major"] = "major"
    window_days: int = Field(default=7, ge=1)  # default window: the last N days (UTC), today included
    min_rows: int = Field(default=200, ge=1)  # fewer rows: figures reported, no alert raised (too noisy)
    experiment: str = "credit-risk-monitoring"
    summary_path: Path | None = None  # default: <prediction log dir>/../monitoring/latest.json

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringConfig:
        if self.psi_major < self.psi_moderate:
            raise ValueError("psi_major must be >= psi_moderate")
        return self


class OutcomesConfig(_Frozen):
    """Loan outcomes loaded back (``mlflow run . -e outcomes``, ``POST /v1/outcomes``)."""

    directory: Path | None = None  # default: <prediction log dir>/../outcomes
    max_batch_size: int = Field(default=1000, ge=1)  # rows per POST /v1/outcomes
    # a decision counts in realized figures (and in retraining) once it is this old
    maturity_days: int = Field(default=365, ge=0)


class PerformanceConfig(_Frozen):
    """Realized performance (``mlflow run . -e performance``): alert thresholds and outputs."""

    min_auc: float = Field(default=0.65, ge=0, le=1)  # realized AUC below this: alert
    max_auc_drop: float = Field(default=0.05, ge=0, le=1)  # realized AUC this far below the holdout's: alert
    band_margin: float = Field(default=0.05, ge=0, le=1)  # observed bad rate outside a band's range by more: alert
    min_outcomes: int = Field(default=200, ge=1)  # fewer outcomes for a version: figures, no alert
    min_band_outcomes: int = Field(default=50, ge=1)  # fewer outcomes in a band: no band alert
    experiment: str = "credit-risk-performance"
    summary_path: Path | None = None  # default: <prediction log dir>/../performance/latest.json


class UIConfig(_Frozen):
    api_url: str = "http://127.0.0.1:8000"
    timeout_seconds: float = Field(default=10.0, gt=0)
    admin_timeout_seconds: float = Field(default=300.0, gt=0)
    batch_chunk_size: int = Field(default=200, ge=1)
    max_upload_rows: int = Field(default=100_000, ge=1)


class Lender(_Frozen):
    """The creditor named on an adverse-action notice (Regulation B, 12 CFR 1002.9(a)(2))."""

    name: str = Field(min_length=1)
    address: tuple[str, ...] = Field(min_length=1)  # one line per item
    phone: str | None = None
    contact: str | None = None  # e.g. an email or web address for questions


class NoticesConfig(_Frozen):
    """Adverse-action notices: who sends them, for which decisions, and the fixed texts."""

    decisions: tuple[Literal["decline", "review"], ...] = ("decline",)  # "review": referrals get one too
    lender: Lender
    # the federal agency that administers compliance for this creditor (Regulation B appendix A)
    agency: Lender
    max_reasons: int = Field(default=4, ge=1, le=4)  # Regulation B: more than four is not likely helpful
    ecoa_notice: str = Field(min_length=1)
    statement_of_action: str = "we are unable to approve your application for credit at this time"


class AuditConfig(_Frozen):
    """Finding, replaying and recording decisions."""

    # the decision index (SQLite, built from the prediction log's files) and the access log;
    # null: beside the prediction log directory, in <log dir>/../audit/
    index_path: Path | None = None
    access_log: Path | None = None
    refresh_seconds: float = Field(default=2.0, ge=0)  # an unknown request id re-reads new log files at most this often
    page_size: int = Field(default=20, ge=1, le=500)
    max_page_size: int = Field(default=200, ge=1, le=5000)
    policy_experiment: str = "credit-risk-policies"  # one run per decision policy version
    replay_experiment: str = "credit-risk-replay"
    # probabilities re-computed by another tree runtime than the one that served (numpy vs XGBoost)
    # agree to this; score, band, decision and reasons must be exactly equal
    probability_tolerance: float = Field(default=1e-6, ge=0, le=1e-3)


class SecurityConfig(_Frozen):
    """What the service and the jobs refuse to trust."""

    # true: a version whose artifact digest is not signed under CREDIT_RISK_MODEL_SIGNING_KEY is never
    # served, promoted or rolled back to (and none is while the key is not set); false: the signature is
    # checked only when the key is set, and the service warns at every start that it is not
    require_signed_models: bool = False


class ModelConfig(_Frozen):
    """``config/model_config.yaml``: what is served and how decisions are made."""

    registry: RegistryConfig
    decision: DecisionPolicy
    scorecard: ScorecardConfig
    risk_bands: tuple[RiskBand, ...] = Field(min_length=1)
    promotion: PromotionGates
    serving: ServingConfig = ServingConfig()
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
    performance: PerformanceConfig = PerformanceConfig()
    ui: UIConfig = UIConfig()
    notices: NoticesConfig
    audit: AuditConfig = AuditConfig()
    experiments: ExperimentsConfig = ExperimentsConfig()
    security: SecurityConfig = SecurityConfig()

    @model_validator(mode="after")
    def _bands_cover_all(self) -> ModelConfig:
        edges = [band.max_probability for band in self.risk_bands]
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            raise ValueError("risk_bands must be in increasing max_probability order")
        if edges[-1] != 1.0:
            raise ValueError("the last risk band must have max_probability 1.0")
        return self


# ---------------------------------------------------------------- training.yaml


class ProductionDataConfig(_Frozen):
    """Training from production: logged applicants joined with their matured outcomes."""

    include_file: bool = False  # add the configured data file's rows to the training part
    min_outcomes: int = Field(default=300, ge=10)  # fewer matured outcomes: training refuses
    min_events: int = Field(default=30, ge=2)  # fewer defaults among them: training refuses
    lookback_days: int | None = Field(default=None, ge=1)  # only decisions this recent (default: all)


class DataConfig(_Frozen):
    path: Path
    holdout_fraction: float = Field(gt=0, lt=0.5)
    # Out-of-time validation: a column of the data file with the application date. The holdout is
    # then the most recent period (from ``cutoff``, or the latest holdout_fraction of rows) and the
    # cross-validation runs on the earlier one. Without it, the holdout is a stratified random split.
    time_column: str | None = Field(default=None, min_length=1)
    cutoff: date | None = None
    source: Literal["file", "production"] = "file"
    production: ProductionDataConfig = ProductionDataConfig()

    @model_validator(mode="after")
    def _cutoff_needs_time(self) -> DataConfig:
        if self.cutoff is not None and self.time_column is None:
            raise ValueError("data.cutoff needs data.time_column")
        return self


class CVConfig(_Frozen):
    folds: int = Field(ge=2, le=20)
    repeats: int = Field(ge=1, le=10)


class EvaluationConfig(_Frozen):
    cost_false_approve: float = Field(gt=0)
    cost_false_decline: float = Field(gt=0)
    min_group_size: int = Field(ge=1)
    # The outcome the disparate-impact ratio compares: "not_declined" (approved or
    # referred to a human: the model took no adverse action) or "approved".
    favourable_outcome: Literal["not_declined", "approved"] = "not_declined"


class LogisticParams(_Frozen):
    C: float = Field(gt=0)


class XGBoostParams(_Frozen):
    max_depth: int = Field(ge=1, le=12)
    learning_rate: float = Field(gt=0, le=1)
    n_estimators: int = Field(ge=1, le=5000)
    subsample: float = Field(default=1.0, gt=0, le=1)
    colsample_bytree: float = Field(default=1.0, gt=0, le=1)
    min_child_weight: float = Field(default=1.0, ge=0)
    reg_lambda: float = Field(default=1.0, ge=0)
    gamma: float = Field(default=0.0, ge=0)


class CandidatesConfig(_Frozen):
    logistic_regression: tuple[LogisticParams, ...] = ()
    xgboost: tuple[XGBoostParams, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> CandidatesConfig:
        if not self.logistic_regression and not self.xgboost:
            raise ValueError("at least one candidate is needed")
        return self


class QuickSearchConfig(_Frozen):
    """The first model's search (``make up`` on a fresh machine): the first candidate of each kind under
    a lighter cross-validation, so the first page is up in minutes; ``make train`` runs the full search."""

    folds: int = Field(default=5, ge=2, le=20)
    repeats: int = Field(default=1, ge=1, le=10)
    candidates_per_kind: int = Field(default=1, ge=1)


class TrainingConfig(_Frozen):
    """``config/training.yaml``: how candidates are trained, selected and evaluated."""

    seed: int
    data: DataConfig
    cv: CVConfig
    evaluation: EvaluationConfig
    candidates: CandidatesConfig
    quick_search: QuickSearchConfig = QuickSearchConfig()

    def quick(self) -> TrainingConfig:
        """This configuration with the quick search's cross-validation and candidates."""
        quick = self.quick_search
        keep = quick.candidates_per_kind
        candidates = CandidatesConfig(
            logistic_regression=self.candidates.logistic_regression[:keep], xgboost=self.candidates.xgboost[:keep]
        )
        return self.model_copy(
            update={"cv": CVConfig(folds=quick.folds, repeats=quick.repeats), "candidates": candidates}
        )


# ---------------------------------------------------------------- the whole project


class ProjectConfig(_Frozen):
    """Everything in ``config/``: the model's contract, training, serving."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    root: Path
    config_dir: Path
    features: FeatureSchema
    training: TrainingConfig
    model: ModelConfig

    def resolve(self, path: Path) -> Path:
        """A path from a config file, relative to the project root."""
        return path if path.is_absolute() else self.root / path


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _validation_message(path: Path, exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
    return f"{path}: invalid configuration: " + "; ".join(problems)


def parse_config_file(path: Path, model: type[BaseModel]) -> Any:
    """Read one YAML file into its config model, with errors that name the key."""
    try:
        return model.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: invalid configuration: {exc}") from exc


def load_project_config(config_dir: Path | None = None, *, root: Path | None = None) -> ProjectConfig:
    """Load ``features.yaml``, ``training.yaml`` and ``model_config.yaml`` from one folder."""
    config_dir = Path(config_dir or DEFAULT_CONFIG_DIR)
    return ProjectConfig(
        root=Path(root or PROJECT_ROOT),
        config_dir=config_dir,
        features=parse_config_file(config_dir / "features.yaml", FeatureSchema),
        training=parse_config_file(config_dir / "training.yaml", TrainingConfig),
        model=parse_config_file(config_dir / "model_config.yaml", ModelConfig),
    )


class Settings(BaseSettings):
    """What differs between deployments, from the environment.

    ``MLFLOW_TRACKING_URI`` is honoured as MLflow users expect; without it the
    embedded store ``sqlite:///mlruns/mlflow.db`` under the project is used.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)  # never print a secret

    mlflow_tracking_uri: str | None = Field(default=None, alias="MLFLOW_TRACKING_URI")
    config_dir: Path = Field(default=DEFAULT_CONFIG_DIR, alias="CREDIT_RISK_CONFIG_DIR")
    # one bearer token per role (credit_risk/roles.py says what each may do); each has a name, recorded
    # in the ledger and the access log: from *_TOKEN_NAME, else the role's own name
    admin_token: str | None = Field(default=None, alias="CREDIT_RISK_ADMIN_TOKEN")
    admin_token_name: str | None = Field(default=None, alias="CREDIT_RISK_ADMIN_TOKEN_NAME")
    auditor_token: str | None = Field(default=None, alias="CREDIT_RISK_AUDITOR_TOKEN")
    auditor_token_name: str | None = Field(default=None, alias="CREDIT_RISK_AUDITOR_TOKEN_NAME")
    reviewer_token: str | None = Field(default=None, alias="CREDIT_RISK_REVIEWER_TOKEN")
    reviewer_token_name: str | None = Field(default=None, alias="CREDIT_RISK_REVIEWER_TOKEN_NAME")
    approver_token: str | None = Field(default=None, alias="CREDIT_RISK_APPROVER_TOKEN")
    approver_token_name: str | None = Field(default=None, alias="CREDIT_RISK_APPROVER_TOKEN_NAME")
    api_url: str | None = Field(default=None, alias="CREDIT_RISK_API_URL")
    log_dir: Path | None = Field(default=None, alias="CREDIT_RISK_LOG_DIR")
    # this instance's name in its prediction-log writer ids (default: prediction_log.writer_id, else the host)
    writer_id: str | None = Field(default=None, alias="CREDIT_RISK_WRITER_ID")
    # key of the HMAC that replaces prediction_log.hash_fields; never logged, never in config files
    log_hash_key: SecretStr | None = Field(default=None, alias="CREDIT_RISK_LOG_HASH_KEY")
    # key of the HMAC that signs each version's artifact digest at registration, checked at every
    # load when set; held outside MLflow, so writing the registry is not enough to forge a model
    model_signing_key: SecretStr | None = Field(default=None, alias="CREDIT_RISK_MODEL_SIGNING_KEY")

    @model_validator(mode="after")
    def _secrets_long_enough(self) -> Settings:
        """A short token or key is guessable: refuse to start with one, naming the variable (never its value)."""
        secrets = {
            f"CREDIT_RISK_{role.upper()}_TOKEN": getattr(self, f"{role}_token")
            for role in ("admin", "auditor", "reviewer", "approver")
        }
        secrets["CREDIT_RISK_LOG_HASH_KEY"] = self.log_hash_key.get_secret_value() if self.log_hash_key else None
        secrets["CREDIT_RISK_MODEL_SIGNING_KEY"] = (
            self.model_signing_key.get_secret_value() if self.model_signing_key else None
        )
        short = [name for name, value in secrets.items() if value and len(value) < MIN_SECRET_LENGTH]
        if short:
            raise ValueError(
                f"{', '.join(short)}: shorter than {MIN_SECRET_LENGTH} characters; use a long random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
        return self
