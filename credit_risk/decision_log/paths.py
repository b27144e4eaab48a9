"""Where the log lives: its directory, its date partitions, and the monitoring summary beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from credit_risk.config import PROJECT_ROOT, MonitoringConfig, ProjectConfig, Settings
from credit_risk.private_files import atomic_write

PARTITION = "date"  # hive partitions: <log dir>/date=YYYY-MM-DD/part-*.parquet (UTC dates)
ARTIFACT_DIR = "predictions"  # the MLflow copies: <serving run>/predictions/date=YYYY-MM-DD/
INVALID_DIR = "_invalid"  # records that did not fit the schema (JSON lines; readers skip "_" folders)
PARTITION_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def resolve_log_dir(config: ProjectConfig, settings: Settings) -> Path:
    """The log directory: env ``CREDIT_RISK_LOG_DIR`` if set, else the configured one (root-relative)."""
    return Path(settings.log_dir) if settings.log_dir else config.resolve(config.model.prediction_log.directory)


def read_dirs(config: ProjectConfig, settings: Settings, log_dir: Path | None = None) -> list[Path]:
    """Where the readers read the log: ``log_dir`` when one is given (a job's ``--log-dir``), else every
    ``prediction_log.read_directories`` entry (root-relative), else the log directory."""
    if log_dir is not None:
        return [Path(log_dir)]
    listed = config.model.prediction_log.read_directories
    return [config.resolve(folder) for folder in listed] if listed else [resolve_log_dir(config, settings)]


def partition_dir(log_dir: Path, day: str) -> Path:
    """The folder of one UTC date (``YYYY-MM-DD``)."""
    return Path(log_dir) / f"{PARTITION}={day}"


def logged_dates(log_dir: Path) -> list[str]:
    """The UTC dates (``YYYY-MM-DD``) that have a partition in the log, oldest first."""
    if not Path(log_dir).is_dir():
        return []
    found = (PARTITION_DIR.match(entry.name) for entry in Path(log_dir).iterdir() if entry.is_dir())
    return sorted(match.group(1) for match in found if match)


def summary_path(monitoring: MonitoringConfig, log_dir: Path, root: Path = PROJECT_ROOT) -> Path:
    """Where the monitor writes, and the API reads, the latest monitoring summary."""
    if monitoring.summary_path is not None:
        return monitoring.summary_path if monitoring.summary_path.is_absolute() else root / monitoring.summary_path
    return Path(log_dir).parent / "monitoring" / "latest.json"


def write_summary(path: Path, document: dict[str, Any]) -> None:
    """Atomically replace a job's latest summary (JSON, fsynced): the API never reads half a file."""
    atomic_write(path, lambda handle: json.dump(document, handle, indent=2), mode="w")
