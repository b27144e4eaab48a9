"""What every part of the configuration shares: the error, the frozen base model, the project's paths."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

MIN_SECRET_LENGTH = 16  # role tokens and keys: shorter ones are refused at start
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # credit_risk/config/base.py -> the repository
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
