"""``model_config.yaml``: the service's parts.

The scoring API, the prediction log it writes, the Streamlit UI that talks to it, and what the
service and the jobs refuse to trust.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen

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


class SecurityConfig(_Frozen):
    """What the service and the jobs refuse to trust."""

    require_signed_models: bool = Field(
        default=False,
        description="true: a version whose artifact digest is not signed under CREDIT_RISK_MODEL_SIGNING_KEY is "
        "never served, promoted or rolled back to (and none is while the key is not set); false: the signature "
        "is checked only when the key is set, and the service warns at every start that it is not.",
    )
