"""What differs between deployments, read from the environment: :class:`Settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from credit_risk.config.base import DEFAULT_CONFIG_DIR, MIN_SECRET_LENGTH


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
