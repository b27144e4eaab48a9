"""The prediction log's writer: write-ahead file, Parquet files, MLflow copies (the format is in the core).

The record format, paths, privacy and reader live in :mod:`credit_risk.decision_log`. The writer's names
are imported on first use, so the converter process (:mod:`serving.prediction_log.converter`) starts
without MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "HIGH_WATER",
    "PredictionLogClosedError",
    "PredictionLogError",
    "PredictionLogFullError",
    "PredictionLogWriteError",
    "PredictionLogWriter",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("serving.prediction_log.writer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
