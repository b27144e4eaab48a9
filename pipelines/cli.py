"""What every job's ``main`` shares: logging set-up and clean failure messages."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

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
