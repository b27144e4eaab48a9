"""What every job's ``main`` shares: logging set-up, clean failure messages and the common arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from credit_risk.config import ConfigError
from credit_risk.registry import RegistryError
from credit_risk.schema import DataValidationError

EXPECTED_FAILURES = (ConfigError, DataValidationError, RegistryError)


def run_job(job: Callable[[], object]) -> int:
    """Run a job; an expected failure prints one clear line and exits 1, never a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        job()
    except EXPECTED_FAILURES as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_alert_exit_code(parser: argparse.ArgumentParser) -> None:
    """``--alert-exit-code``: what a run that raised an alert exits with (default 2, for cron and CI);
    ``mlflow run`` passes 0, so the run stays FINISHED in MLflow with the alert recorded in it."""
    parser.add_argument(
        "--alert-exit-code",
        type=int,
        choices=(0, 2),
        default=2,
        help="exit code when an alert is raised (default 2; 0 under mlflow run: an alert is a finding)",
    )


def report_findings(job: str, *, alerts: list[str], status: str, run_id: str | None, notes: list[str]) -> None:
    """Say what a checking job found, in sentences, on standard output: an alert is a finding, not a crash."""
    where = f" (MLflow run {run_id})" if run_id else ""
    if alerts:
        count = "1 alert" if len(alerts) == 1 else f"{len(alerts)} alerts"
        print(f"{job} finished and raised {count}{where}:")
        for alert in alerts:
            print(f"  - {alert}")
    else:
        print(f"{job} finished with no alert{where}; status: {status.replace('_', ' ')}.")
    for note in notes:
        print(note)


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def add_config_dir(parser: argparse.ArgumentParser) -> None:
    """``--config-dir``; absent or empty (as ``mlflow run`` passes its default) means
    ``CREDIT_RISK_CONFIG_DIR``, else ``config/``."""
    parser.add_argument(
        "--config-dir",
        type=_optional_path,
        default=None,
        help="folder with the YAML configuration (default: CREDIT_RISK_CONFIG_DIR, else config/)",
    )


def _optional_date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def add_window(parser: argparse.ArgumentParser, *, start_help: str, end_help: str) -> None:
    """``--start`` and ``--end`` (UTC dates) and ``--log-dir`` (the prediction log) of the jobs that read
    the log; empty values (as ``mlflow run`` passes its defaults) mean the job's default."""
    parser.add_argument("--start", type=_optional_date, default=None, help=start_help)
    parser.add_argument("--end", type=_optional_date, default=None, help=end_help)
    parser.add_argument(
        "--log-dir", type=_optional_path, default=None, help="prediction log folder (default: as the service)"
    )
