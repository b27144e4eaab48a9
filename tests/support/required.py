"""Real components a test needs: skip where one is missing locally, fail under ``CI=true``.

CI installs every component (``scripts/install-system-deps.sh``), so a missing
one there is a broken set-up, not a reason to pass quietly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_component(reason: str | None) -> None:
    """``reason`` says what is missing (None: nothing is). Fails under CI=true, else skips, printing why."""
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and a required component is missing: {reason}", pytrace=False)
    print(f"SKIPPED: {reason}")  # shown with -rs / -s: never a silent skip
    pytest.skip(reason)


def spark_unavailable_reason() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (requirements-dev.txt)"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark (java not on PATH, JAVA_HOME unset)"
    return None


def wrk_unavailable_reason() -> str | None:
    return None if shutil.which("wrk") else "wrk is not on PATH"
