"""Typed configuration: read once at an entry point, passed down as frozen objects.

Each YAML file in ``config/`` maps to one model here, and every key has its
default in the model: a file states only what differs (``features.yaml``, the
feature schema, is always the lender's own). Unknown keys are refused and a bad
value fails at start with a message that names the file and the key.
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
    """Where models are registered and which alias is served."""

    model_name: str = Field(default="credit-risk", min_length=1, description="The registered model's name.")
    experiment: str = Field(default="credit-risk", min_length=1, description="The MLflow experiment of training runs.")
    serving_alias: str = Field(default="production", min_length=1, description="The alias the service follows.")
    challenger_alias: str = Field(
        default="challenger", min_length=1, description="The alias given to every newly registered version."
    )
    pinned_version: int | None = Field(
        default=None, ge=1, description="Emergency pin: serve this version and ignore the alias."
    )


class DecisionPolicy(_Frozen):
    """The decision policy, versioned apart from the model."""

    policy_version: str = Field(
        default="2026-11-24.1",
        min_length=1,
        description="The policy's own version; one version string always means one policy (recorded in MLflow).",
    )
    approve_below: float = Field(
        default=0.1667,
        gt=0,
        lt=1,
        description="P(default) below which an application is approved. 1/6 is the cost-optimal cut-off under "
        "the data set's cost matrix (a bad loan accepted costs 5, a good one refused costs 1); evaluation, "
        "fairness and promotion use it too.",
    )
    decline_at_or_above: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="P(default) from which an application is declined; between the two: review.",
    )
    max_reasons: int = Field(
        default=4, ge=1, le=10, description="Reasons per decision (Regulation B: more than four is not helpful)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> DecisionPolicy:
        if self.decline_at_or_above < self.approve_below:
            raise ValueError("decline_at_or_above must be >= approve_below")
        return self


class ScorecardConfig(_Frozen):
    """Scorecard scaling: Score = Offset + Factor * ln(good:bad odds), Factor = PDO / ln 2."""

    points_at_reference_odds: float = Field(default=600, description="The score at the reference odds.")
    reference_odds: float = Field(default=50, gt=0, description="The reference good:bad odds.")
    points_to_double_odds: float = Field(default=20, gt=0, description="Points to double the odds (PDO).")

    @property
    def factor(self) -> float:
        return self.points_to_double_odds / math.log(2)

    @property
    def offset(self) -> float:
        return self.points_at_reference_odds - self.factor * math.log(self.reference_odds)


class RiskBand(_Frozen):
    """One risk band: the probabilities up to ``max_probability`` (after the previous band's)."""

    name: str = Field(min_length=1, description="The band's name.")
    max_probability: float = Field(gt=0, le=1, description="The band's upper P(default).")


DEFAULT_RISK_BANDS = tuple(
    RiskBand(name=name, max_probability=edge)
    for name, edge in (("A", 0.05), ("B", 0.10), ("C", 0.1667), ("D", 0.30), ("E", 0.50), ("F", 1.0))
)


class PromotionGates(_Frozen):
    """Champion/challenger gates, on the same holdout for both models."""

    min_auc: float = Field(default=0.70, ge=0, le=1, description="Minimum holdout ROC-AUC of the challenger.")
    max_auc_drop: float = Field(
        default=0.02, ge=0, le=1, description="Largest ROC-AUC drop allowed against the champion."
    )
    min_disparate_impact: float = Field(
        default=0.80, ge=0, le=1, description="Minimum disparate-impact ratio per protected attribute."
    )
    max_brier: float = Field(default=0.20, ge=0, le=1, description="Maximum holdout Brier score.")
    # a promotion that passes the gates waits for a second person with the approver role (SR 11-7)
    require_approval: bool | None = Field(
        default=None,
        description="A second person with the approver role approves each promotion; null: on exactly when "
        "CREDIT_RISK_APPROVER_TOKEN is configured.",
    )
    approval_hours: float = Field(default=72.0, gt=0, description="A pending promotion request expires after this.")


class ExperimentsConfig(_Frozen):
    """Champion/challenger experiments (``POST /v1/admin/experiments``, ``mlflow run . -e experiment``)."""

    max_share: float = Field(default=0.5, gt=0, le=1, description="The largest challenger share a split may take.")
    min_per_arm: int = Field(default=100, ge=1, description="Fewer applicants in an arm: not yet enough to tell.")
    min_outcomes_per_arm: int = Field(
        default=50, ge=1, description="Fewer matured outcomes in an arm: no verdict on outcomes."
    )
    srm_p_value: float = Field(
        default=0.001, gt=0, lt=1, description="A chi-square p below this is a sample-ratio mismatch."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="The confidence of every interval.")
    bootstrap_rounds: int = Field(
        default=400, ge=50, le=10_000, description="Resamples for realized AUC and bad rate intervals."
    )
    shadow_reasons: bool = Field(
        default=False, description="Compute the challenger's reasons in a shadow (TreeSHAP per applicant)."
    )
    experiment: str = Field(
        default="credit-risk-experiments", description="The MLflow experiment of the report job's runs."
    )


_HOST_ENTRY = re.compile(r"\*|([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


class ServingConfig(_Frozen):
    """The scoring service (``python -m serving.app``)."""

    host: str = Field(default="127.0.0.1", description="The address the API binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="The API's port.")
    poll_interval_seconds: float = Field(
        default=10.0, gt=0, description="How often the registry is asked where the alias points."
    )
    registry_read_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="/v1/registry and the validation reports: an answer is kept this long (anonymous floods "
        "cost one read).",
    )
    max_body_bytes: int = Field(
        default=65536, ge=1024, description="Request body cap (413 above it), except a batch's."
    )
    max_batch_body_bytes: int = Field(
        default=2_097_152,
        ge=1024,
        description="Body cap of POST /v1/predict/batch: room for max_batch_size applicants (about 700 bytes each).",
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Applicants per POST /v1/predict/batch.")
    cors_origins: tuple[str, ...] = Field(
        default=("http://localhost:8501", "http://127.0.0.1:8501"),
        description="The only origins CORS allows (the UI); empty: no CORS headers at all.",
    )
    retry_seconds: float = Field(default=2.0, gt=0, description="Registry re-check interval while no model is served.")
    warmup_rounds: int = Field(default=20, ge=1, description="Example scorings before a new version is switched in.")
    startup_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A worker accepts requests once its first load is done (or failed), or after this.",
    )
    offload_scoring: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Where scoring runs: auto = the threadpool for batches and XGBoost calls (they release the "
        "GIL), the event loop for a single applicant on the numpy runtime; always / never to compare.",
    )
    fast_path: bool = Field(
        default=True,
        description="POST /v1/predict's common case answered in front of FastAPI's routing and middleware "
        "(same checks, scoring, log, metrics; every refusal still through the framework); false to compare.",
    )
    prediction_log: bool = Field(default=True, description="Hand every scored applicant to the prediction log.")
    drain_timeout_seconds: float = Field(
        default=30.0, gt=0, description="On shutdown: time allowed to flush the prediction log."
    )
    drain_grace_seconds: float = Field(
        default=1.0, ge=0, description="On SIGTERM: /ready turns 503 and requests are still served this long."
    )
    body_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request body must arrive whole within this (408 otherwise)."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="python -m serving.app: a connection whose request headers are not in this long after it "
        "opened (or after its last answer) is closed.",
    )
    graceful_shutdown_seconds: float = Field(
        default=15.0, gt=0, description="python -m serving.app: in-flight requests get this long on shutdown."
    )
    max_concurrency: int = Field(
        default=1024,
        ge=1,
        description="python -m serving.app: past this many open connections (idle ones too) requests are answered 503.",
    )
    access_log: bool = Field(
        default=False,
        description="One JSON line per request on stderr (method, path, status, ms), written by a background thread.",
    )
    tree_runtime: Literal["numpy", "xgboost"] = Field(
        default="numpy",
        description="Single requests: numpy (the trees as arrays; probabilities and TreeSHAP reasons, verified "
        "against XGBoost at load) or xgboost (inplace_predict and pred_contribs); large batches always use XGBoost.",
    )
    allowed_hosts: tuple[str, ...] | None = Field(
        default=None,
        description="Host headers answered (others get 400: DNS rebinding); each name or name:port, * for any. "
        "null: host (unless 0.0.0.0/::), localhost, 127.0.0.1 and [::1], and the address a request came in on; "
        "a name without a port matches no port, port, or the port the request came in on.",
    )

    @model_validator(mode="after")
    def _hosts_well_formed(self) -> ServingConfig:
        bad = [host for host in self.allowed_hosts or () if not _HOST_ENTRY.fullmatch(host)]
        if bad:
            raise ValueError(f"allowed_hosts: {bad}: expected a host name, an [IPv6] address or '*', optionally :port")
        return self


class PredictionLogConfig(_Frozen):
    """Every scored applicant is one row of a Parquet table, hive-partitioned by UTC date."""

    directory: Path = Field(
        default=Path("logs/predictions"),
        description="The log's folder, relative to the project root; env CREDIT_RISK_LOG_DIR overrides it.",
    )
    flush_every_records: int = Field(
        default=10_000, ge=1, description="A Parquet file is written every N records (or every flush_interval_seconds)."
    )
    flush_interval_seconds: float = Field(
        default=1.0, gt=0, description="... or every T seconds, whichever comes first (from the write-ahead file)."
    )
    queue_max_records: int = Field(
        default=100_000,
        ge=1,
        description="Records not yet in Parquet; beyond, requests get 503 at once (/ready: 503 at 80%).",
    )
    retention_days: int = Field(
        default=180, ge=1, description="Date partitions older than this are deleted (EU AI Act: at least six months)."
    )
    serving_experiment: str = Field(
        default="credit-risk-serving", description="Closed files are copied to a run per model version here."
    )
    drop_fields: tuple[str, ...] = Field(default=(), description="Schema fields never written.")
    hash_fields: tuple[str, ...] = Field(
        default=(), description="Schema fields replaced by HMAC-SHA256 (key: env CREDIT_RISK_LOG_HASH_KEY)."
    )
    durability: Literal["fsync", "interval"] = Field(
        default="fsync",
        description="fsync: a decision is answered only once its record is fsync'd to the write-ahead file "
        "(survives kill -9 and power loss; group commit); interval: the answer does not wait, the segment "
        "is synced when it closes.",
    )
    submit_timeout_seconds: float = Field(
        default=2.0, gt=0, description="A request waits at most this long for its fsync, then gets 503."
    )
    group_commit_ms: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="Under load, the fsync process gathers requests this long before each fsync (0: never waits).",
    )
    upload_artifacts: bool = Field(default=True, description="Copy closed files to the serving run in MLflow.")
    upload_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Failed uploads are retried with backoff up to this interval."
    )
    writer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_.]+$",
        description="Several instances may share one directory: each worker writes under <writer_id>-<random> "
        "(null: the host name; env CREDIT_RISK_WRITER_ID names one instance).",
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="A writer renews its lease every third of this; another host takes a dead writer's files "
        "over only once its lease has expired (hosts' clocks must agree to well within it).",
    )
    read_directories: tuple[Path, ...] = Field(
        default=(),
        description="Where the readers (monitor, performance, outcomes, audit index, replay, retraining) read "
        "the log: every listed directory, as one log (empty: the directory above).",
    )

    @model_validator(mode="after")
    def _privacy_disjoint(self) -> PredictionLogConfig:
        both = sorted(set(self.drop_fields) & set(self.hash_fields))
        if both:
            raise ValueError(f"fields both dropped and hashed: {both}")
        return self


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


class UIConfig(_Frozen):
    """The Streamlit UI."""

    api_url: str = Field(
        default="http://127.0.0.1:8000", description="The API the UI talks to; env CREDIT_RISK_API_URL overrides it."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per API call.")
    admin_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Promote and rollback evaluate models: allowed longer."
    )
    batch_chunk_size: int = Field(
        default=200,
        ge=1,
        description="At most this many applicants per POST /v1/predict/batch call; fewer when "
        "serving.max_batch_size or serving.max_body_bytes is lower.",
    )
    max_upload_rows: int = Field(default=100_000, ge=1, description="Larger CSV uploads are refused on the Batch page.")


class Lender(_Frozen):
    """A party named on an adverse-action notice (Regulation B, 12 CFR 1002.9(a)(2))."""

    name: str = Field(min_length=1, description="The name printed on the notice.")
    address: tuple[str, ...] = Field(min_length=1, description="The address, one line per item.")
    phone: str | None = Field(default=None, description="A phone number.")
    contact: str | None = Field(default=None, description="An email or web address for questions.")


EXAMPLE_LENDER = Lender(
    name="Example Community Lending Ltd.",
    address=("1 Market Street", "Springfield, ST 00000"),
    phone="+1 555 0100",
    contact="credit-decisions@example.invalid",
)
CFPB = Lender(name="Consumer Financial Protection Bureau", address=("1700 G Street NW", "Washington, DC 20552"))
ECOA_NOTICE = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against credit applicants "
    "on the basis of race, color, religion, national origin, sex, marital status, age (provided the applicant has "
    "the capacity to enter into a binding contract); because all or part of the applicant's income derives from "
    "any public assistance program; or because the applicant has in good faith exercised any right under the "
    "Consumer Credit Protection Act. The Federal agency that administers compliance with this law concerning "
    "this creditor is named below."
)


class NoticesConfig(_Frozen):
    """Adverse-action notices (Regulation B, 12 CFR 1002.9): who sends them, for which decisions, the texts."""

    decisions: tuple[Literal["decline", "review"], ...] = Field(
        default=("decline",), description="Decisions that get a notice; add review to send one for a referral too."
    )
    lender: Lender = Field(
        default=EXAMPLE_LENDER,
        description="The creditor (name, address, phone, contact); the default is an example: set your own.",
    )
    agency: Lender = Field(
        default=CFPB,
        description="The federal agency that administers compliance for this creditor (Regulation B appendix A).",
    )
    max_reasons: int = Field(
        default=4,
        ge=1,
        le=4,
        description="Principal reasons on a notice (Regulation B: more than four is not helpful).",
    )
    ecoa_notice: str = Field(default=ECOA_NOTICE, min_length=1, description="The ECOA anti-discrimination notice.")
    statement_of_action: str = Field(
        default="we are unable to approve your application for credit at this time",
        description="The action taken, as the notice words it.",
    )
    recourse: bool = Field(
        default=False,
        description="True: a notice also says what would have changed the decision (the auditor route's "
        "alternatives), when the version that decided is the one served.",
    )


class AuditConfig(_Frozen):
    """Finding, replaying and recording decisions (``GET /v1/decisions...``, ``mlflow run . -e replay``)."""

    index_path: Path | None = Field(
        default=None,
        description="SQLite index of the log's files; null: <prediction log dir>/../audit/decisions.sqlite.",
    )
    access_log: Path | None = Field(
        default=None, description="Who looked at which decision; null: <prediction log dir>/../audit/access.jsonl."
    )
    refresh_seconds: float = Field(
        default=2.0, ge=0, description="An unknown request id re-reads the log's new files at most this often."
    )
    page_size: int = Field(default=20, ge=1, le=500, description="Decisions per page of an applicant's list.")
    max_page_size: int = Field(default=200, ge=1, le=5000, description="The largest page_size a caller may ask.")
    policy_experiment: str = Field(
        default="credit-risk-policies",
        description="Each decision policy version, recorded the first time a service starts with it.",
    )
    replay_experiment: str = Field(default="credit-risk-replay", description="The MLflow experiment of replay runs.")
    probability_tolerance: float = Field(
        default=1e-6,
        ge=0,
        le=1e-3,
        description="Probabilities re-computed by another tree runtime (numpy vs XGBoost) agree to this; score, "
        "band, decision and reasons must be exactly equal.",
    )


class RecourseConfig(_Frozen):
    """What would change the decision: the search's limits and the cost of changing each field.

    A change costs the field's weight (``costs``, default 1.0) times how far it moves: the share of the
    applicant's own value for a plain number (15,000 to 9,000 DM: 0.4), steps over the scale's length
    for an ordered category or a coded number. Alternatives are ranked by their summed cost.
    """

    max_changes: int = Field(default=2, ge=1, le=3, description="Fields changed in one alternative.")
    max_alternatives: int = Field(default=3, ge=1, le=10, description="Alternatives returned, cheapest first.")
    costs: dict[str, float] = Field(
        default_factory=dict,
        description="Weight of a change per field (> 0; a field the schema lacks is refused); unnamed fields: 1.0.",
    )
    values_per_field: int = Field(
        default=12, ge=2, le=64, description="A field's values tried in combinations (its strongest kept)."
    )

    @model_validator(mode="after")
    def _positive(self) -> RecourseConfig:
        bad = sorted(name for name, cost in self.costs.items() if not cost > 0)
        if bad:
            raise ValueError(f"recourse.costs must be positive: {', '.join(bad)}")
        return self

    def cost_of(self, field: str) -> float:
        return float(self.costs.get(field, 1.0))


class SecurityConfig(_Frozen):
    """What the service and the jobs refuse to trust."""

    require_signed_models: bool = Field(
        default=False,
        description="true: a version whose artifact digest is not signed under CREDIT_RISK_MODEL_SIGNING_KEY is "
        "never served, promoted or rolled back to (and none is while the key is not set); false: the signature "
        "is checked only when the key is set, and the service warns at every start that it is not.",
    )


class ReasonCode(_Frozen):
    """A reviewer's reason for a final decision (an override needs one)."""

    code: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_]*$", description="What the API takes and records."
    )
    label: str = Field(min_length=1, max_length=200, description="What reviewers and notices read.")
    adverse: bool = Field(
        default=False,
        description="A reason the applicant is told on a decline's notice (documents missing), or not (income "
        "verified).",
    )


DEFAULT_REASON_CODES = (
    ReasonCode(code="verified_income", label="Income verified"),
    ReasonCode(code="verified_employment", label="Employment verified"),
    ReasonCode(code="additional_information", label="Additional information received"),
    ReasonCode(code="policy_exception", label="Policy exception approved by a credit officer"),
    ReasonCode(code="documents_missing", label="Documents requested were not provided", adverse=True),
    ReasonCode(code="income_insufficient", label="Income insufficient for the amount requested", adverse=True),
    ReasonCode(code="unable_to_verify", label="Unable to verify the information given", adverse=True),
)


class ReviewConfig(_Frozen):
    """Human oversight (docs/oversight.md): which decisions open a case, the queue's due times, reasons."""

    decisions: tuple[Literal["review", "decline"], ...] = Field(
        default=("review",),
        description="Decisions that open a case for a reviewer (add decline: a person sees every one).",
    )
    database_url: str | None = Field(
        default=None,
        description="The case store's SQLAlchemy URL (postgresql+psycopg2://... for a team); null: SQLite beside "
        "the prediction log (<log dir>/../cases/cases.sqlite).",
    )
    sla_hours: float = Field(default=48.0, gt=0, description="A case is due this long after its decision.")
    claim_minutes: float = Field(
        default=30.0, gt=0, description="A reviewer's claim lapses after this: another reviewer may take the case."
    )
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=DEFAULT_REASON_CODES,
        min_length=1,
        description="The reasons a reviewer may give (code, label, adverse).",
    )
    reconcile_seconds: float = Field(
        default=30.0, gt=0, description="How often each worker opens the cases of the decision log's new files."
    )
    page_size: int = Field(default=50, ge=1, le=500, description="The queue's default page size.")
    max_overdue_share: float = Field(
        default=0.10, ge=0, le=1, description="The monitor alerts when more of the waiting cases than this are overdue."
    )

    @model_validator(mode="after")
    def _codes_unique(self) -> ReviewConfig:
        codes = [reason.code for reason in self.reason_codes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"review.reason_codes: codes must be unique, got {codes}")
        return self


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


# ---------------------------------------------------------------- training.yaml


class ProductionDataConfig(_Frozen):
    """Training from production: logged applicants joined with their matured outcomes."""

    include_file: bool = Field(default=False, description="Add the data file's rows to the training part.")
    min_outcomes: int = Field(default=300, ge=10, description="Training refuses on fewer matured outcomes ...")
    min_events: int = Field(default=30, ge=2, description="... or on fewer defaults among them.")
    lookback_days: int | None = Field(default=None, ge=1, description="Only decisions this recent (null: all logged).")


class DataConfig(_Frozen):
    """The training data and how the holdout is split off."""

    path: Path = Field(
        default=Path("data/german_credit.csv"), description="The data file, relative to the project root."
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="The holdout's share; stratified, never seen by selection."
    )
    time_column: str | None = Field(
        default=None,
        min_length=1,
        description="Out-of-time validation: the file's application-date column; the holdout is then the most "
        "recent period (from cutoff, or the latest holdout_fraction of rows) and cross-validation runs on the "
        "earlier one. Null: a stratified random holdout.",
    )
    cutoff: date | None = Field(
        default=None, description="YYYY-MM-DD: applications from this date on are the holdout (needs time_column)."
    )
    source: Literal["file", "production"] = Field(
        default="file",
        description="file: the data file above; production: logged applicants joined with their matured outcomes "
        "(mlflow run . -e train -P source=production), the most recent period as the holdout.",
    )
    production: ProductionDataConfig = ProductionDataConfig()

    @model_validator(mode="after")
    def _cutoff_needs_time(self) -> DataConfig:
        if self.cutoff is not None and self.time_column is None:
            raise ValueError("data.cutoff needs data.time_column")
        return self


class CVConfig(_Frozen):
    """Repeated stratified k-fold cross-validation (the published protocol: 10 folds, 3 repeats)."""

    folds: int = Field(default=10, ge=2, le=20, description="Folds per repeat.")
    repeats: int = Field(default=3, ge=1, le=10, description="Repeats, each with its own shuffle.")


class EvaluationConfig(_Frozen):
    """The cost matrix and the fairness evaluation."""

    cost_false_approve: float = Field(default=5, gt=0, description="The cost of a bad applicant accepted.")
    cost_false_decline: float = Field(default=1, gt=0, description="The cost of a good applicant refused.")
    min_group_size: int = Field(default=20, ge=1, description="Smaller protected groups are reported, not gated.")
    favourable_outcome: Literal["not_declined", "approved"] = Field(
        default="not_declined",
        description="What disparate impact compares: not_declined (approved or referred to a human: a decline is "
        "the automated adverse action) or approved (straight approval rates).",
    )


class LogisticParams(_Frozen):
    """One logistic-regression candidate."""

    C: float = Field(default=1.0, gt=0, description="Inverse regularisation strength.")


class XGBoostParams(_Frozen):
    """One XGBoost candidate (defaults: XGBoost's own)."""

    max_depth: int = Field(default=6, ge=1, le=12, description="Tree depth.")
    learning_rate: float = Field(default=0.3, gt=0, le=1, description="Shrinkage per tree.")
    n_estimators: int = Field(default=100, ge=1, le=5000, description="Number of trees.")
    subsample: float = Field(default=1.0, gt=0, le=1, description="Row share per tree.")
    colsample_bytree: float = Field(default=1.0, gt=0, le=1, description="Column share per tree.")
    min_child_weight: float = Field(default=1.0, ge=0, description="Minimum hessian weight in a leaf.")
    reg_lambda: float = Field(default=1.0, ge=0, description="L2 regularisation.")
    gamma: float = Field(default=0.0, ge=0, description="Minimum loss reduction to split.")


class ScorecardParams(_Frozen):
    """One points-scorecard candidate: each field binned (monotone where the schema declares a direction),
    weight of evidence per bin, a logistic regression on the WoE values, points under ``scorecard`` scaling."""

    C: float = Field(default=1.0, gt=0, description="Inverse regularisation strength of the regression on WoE.")
    max_bins: int = Field(default=5, ge=2, le=20, description="Most bins (attributes) per characteristic.")
    min_bin_share: float = Field(
        default=0.05, gt=0, lt=0.5, description="Smallest share of the training rows in one bin."
    )


def _grid(depth: int, rate: float, trees: int, colsample: float, child: float) -> XGBoostParams:
    return XGBoostParams(
        max_depth=depth,
        learning_rate=rate,
        n_estimators=trees,
        subsample=0.8,
        colsample_bytree=colsample,
        min_child_weight=child,
    )


class CandidatesConfig(_Frozen):
    """The candidates, each run through the full cross-validation. A file's ``candidates:`` replaces the
    default grid whole: a kind it leaves out has no candidates."""

    logistic_regression: tuple[LogisticParams, ...] = Field(
        default=(), description="Logistic-regression candidates (the baseline)."
    )
    xgboost: tuple[XGBoostParams, ...] = Field(default=(), description="XGBoost candidates.")
    scorecard: tuple[ScorecardParams, ...] = Field(
        default=(),
        description="Points-scorecard candidates (binning, weight of evidence, logistic regression, points). "
        "Whatever the candidates, every version's validation report shows a scorecard's CV ROC-AUC as a benchmark.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> CandidatesConfig:
        if not self.logistic_regression and not self.xgboost and not self.scorecard:
            raise ValueError("at least one candidate is needed")
        return self


DEFAULT_CANDIDATES = CandidatesConfig(
    logistic_regression=(LogisticParams(C=0.1), LogisticParams(C=0.3), LogisticParams(C=1.0)),
    xgboost=(
        _grid(3, 0.03, 400, 0.3, 1),
        _grid(3, 0.03, 400, 0.4, 1),
        _grid(3, 0.03, 400, 0.4, 2),
        _grid(3, 0.03, 400, 0.3, 3),
        _grid(3, 0.03, 400, 0.8, 1),
        _grid(3, 0.05, 250, 0.4, 1),
        _grid(4, 0.02, 500, 0.3, 1),
        _grid(4, 0.02, 500, 0.4, 1),
        _grid(4, 0.02, 500, 0.3, 2),
        _grid(2, 0.05, 300, 0.3, 1),
    ),
    scorecard=(ScorecardParams(C=1.0, max_bins=5), ScorecardParams(C=0.1, max_bins=8)),
)


class QuickSearchConfig(_Frozen):
    """The first model's search (``make up`` on a fresh machine): the first candidate of each kind under
    a lighter cross-validation, so the first page is up in minutes; ``make train`` runs the full search."""

    folds: int = Field(default=5, ge=2, le=20, description="Folds of the quick search's cross-validation.")
    repeats: int = Field(default=1, ge=1, le=10, description="Its repeats.")
    candidates_per_kind: int = Field(default=1, ge=1, description="The first N candidates of each kind.")


class TrainingConfig(_Frozen):
    """``training.yaml``: how candidates are trained, selected and evaluated."""

    seed: int = Field(default=42, description="Seeds the split, the folds and the models.")
    data: DataConfig = DataConfig()
    cv: CVConfig = CVConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    candidates: CandidatesConfig = Field(
        default=DEFAULT_CANDIDATES,
        description="Three logistic-regression baselines (C 0.1, 0.3, 1), a bounded XGBoost search: shallow "
        "trees, slow learning, strong column subsampling (the lever that mattered most on German Credit), "
        "subsample 0.8, and two points scorecards (up to 5 bins with C 1, up to 8 with C 0.1). A file's "
        "candidates: replaces the grid whole.",
    )
    quick_search: QuickSearchConfig = QuickSearchConfig()

    def quick(self) -> TrainingConfig:
        """This configuration with the quick search's cross-validation and candidates."""
        quick = self.quick_search
        keep = quick.candidates_per_kind
        candidates = CandidatesConfig(
            logistic_regression=self.candidates.logistic_regression[:keep],
            xgboost=self.candidates.xgboost[:keep],
            scorecard=self.candidates.scorecard[:keep],
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

    @model_validator(mode="after")
    def _recourse_costs_name_fields(self) -> ProjectConfig:
        unknown = sorted(set(self.model.recourse.costs) - set(self.features.by_name))
        if unknown:
            raise ValueError(f"recourse.costs names fields the feature schema does not have: {', '.join(unknown)}")
        return self

    def resolve(self, path: Path) -> Path:
        """A path from a config file, relative to the project root."""
        return path if path.is_absolute() else self.root / path


def _read_yaml(path: Path, *, optional: bool = False) -> dict[str, Any]:
    if not path.is_file():
        if optional:
            return {}
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:  # only comments: every key at its default
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _validation_message(path: Path, exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
    return f"{path}: invalid configuration: " + "; ".join(problems)


def parse_config_file(path: Path, model: type[BaseModel], *, optional: bool = False) -> Any:
    """Read one YAML file into its config model, with errors that name the key.

    The file states only what differs from the model's defaults; an ``optional`` file that is
    missing means every key at its default.
    """
    try:
        return model.model_validate(_read_yaml(path, optional=optional))
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: invalid configuration: {exc}") from exc


def load_project_config(config_dir: Path | None = None, *, root: Path | None = None) -> ProjectConfig:
    """Load ``features.yaml``, ``training.yaml`` and ``model_config.yaml`` from one folder.

    ``features.yaml`` (the lender's feature schema) is required; a missing ``training.yaml`` or
    ``model_config.yaml`` means all defaults.
    """
    config_dir = Path(config_dir or DEFAULT_CONFIG_DIR)
    parts = {
        "features": parse_config_file(config_dir / "features.yaml", FeatureSchema),
        "training": parse_config_file(config_dir / "training.yaml", TrainingConfig, optional=True),
        "model": parse_config_file(config_dir / "model_config.yaml", ModelConfig, optional=True),
    }
    try:
        return ProjectConfig(root=Path(root or PROJECT_ROOT), config_dir=config_dir, **parts)
    except ValidationError as exc:
        raise ConfigError(_validation_message(config_dir / "model_config.yaml", exc)) from exc


class Settings(BaseSettings):
    """What differs between deployments, from the environment.

    ``MLFLOW_TRACKING_URI`` is honoured as MLflow users expect; without it the
    embedded store ``sqlite:///mlruns/mlflow.db`` under the project is used.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)  # never print a secret

    mlflow_tracking_uri: str | None = Field(
        default=None,
        alias="MLFLOW_TRACKING_URI",
        description="The tracking and registry store; unset: sqlite:///<project>/mlruns/mlflow.db.",
    )
    config_dir: Path = Field(
        default=DEFAULT_CONFIG_DIR, alias="CREDIT_RISK_CONFIG_DIR", description="The folder with the YAML files."
    )
    # one bearer token per role (credit_risk/roles.py says what each may do); each has a name, recorded
    # in the ledger and the access log: from *_TOKEN_NAME, else the role's own name
    admin_token: str | None = Field(
        default=None,
        alias="CREDIT_RISK_ADMIN_TOKEN",
        description="Bearer token of the admin role (admin routes, and what the auditor may); unset: admin routes off.",
    )
    admin_token_name: str | None = Field(
        default=None,
        alias="CREDIT_RISK_ADMIN_TOKEN_NAME",
        description="The admin token's name, recorded as the actor (else admin).",
    )
    auditor_token: str | None = Field(
        default=None,
        alias="CREDIT_RISK_AUDITOR_TOKEN",
        description="Bearer token of the auditor role (the decision routes); unset: those routes off.",
    )
    auditor_token_name: str | None = Field(
        default=None, alias="CREDIT_RISK_AUDITOR_TOKEN_NAME", description="The auditor token's name."
    )
    reviewer_token: str | None = Field(
        default=None, alias="CREDIT_RISK_REVIEWER_TOKEN", description="Bearer token of the reviewer role."
    )
    reviewer_token_name: str | None = Field(
        default=None, alias="CREDIT_RISK_REVIEWER_TOKEN_NAME", description="The reviewer token's name."
    )
    approver_token: str | None = Field(
        default=None, alias="CREDIT_RISK_APPROVER_TOKEN", description="Bearer token of the approver role."
    )
    approver_token_name: str | None = Field(
        default=None, alias="CREDIT_RISK_APPROVER_TOKEN_NAME", description="The approver token's name."
    )
    api_url: str | None = Field(
        default=None, alias="CREDIT_RISK_API_URL", description="The API the UI talks to (overrides ui.api_url)."
    )
    log_dir: Path | None = Field(
        default=None,
        alias="CREDIT_RISK_LOG_DIR",
        description="The prediction log folder (overrides prediction_log.directory).",
    )
    writer_id: str | None = Field(
        default=None,
        alias="CREDIT_RISK_WRITER_ID",
        description="This instance's name in its prediction-log writer ids (default: prediction_log.writer_id, "
        "else the host).",
    )
    log_hash_key: SecretStr | None = Field(
        default=None,
        alias="CREDIT_RISK_LOG_HASH_KEY",
        description="Key of the HMAC that replaces prediction_log.hash_fields; never logged, never in config files.",
    )
    model_signing_key: SecretStr | None = Field(
        default=None,
        alias="CREDIT_RISK_MODEL_SIGNING_KEY",
        description="Signs each version's artifact digest at registration; when set, every load refuses a version "
        "without a valid signature (held outside MLflow, so writing the registry is not enough to forge a model).",
    )

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


def configuration_models() -> list[type[BaseModel]]:
    """Every model of ``model_config.yaml`` and ``training.yaml``, outermost first (for the reference)."""
    found: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for field in model.model_fields.values():
            for candidate in _model_types(field.annotation):
                visit(candidate)

    visit(ModelConfig)
    visit(TrainingConfig)
    return found


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in getattr(annotation, "__args__", ()) for model in _model_types(arg)]


def field_description(model: type[BaseModel], name: str) -> str:
    """A key's description: its own, or for a section the section model's docstring."""
    field = model.model_fields[name]
    if field.description:
        return field.description
    section = field.annotation
    if isinstance(section, type) and issubclass(section, BaseModel) and section.__doc__:
        return " ".join(section.__doc__.split())
    return ""


def main(argv: list[str] | None = None) -> int:
    """``python -m credit_risk.config --show [--config-dir DIR]``: the effective configuration."""
    from credit_risk.config_show import main as show

    return show(argv)


if __name__ == "__main__":
    raise SystemExit(main())
