"""The prediction log's writer: write-ahead file, Parquet files, MLflow copies (the format is in the core).

The record format, paths, privacy and reader live in :mod:`credit_risk.decision_log`.
"""

from serving.prediction_log.writer import (
    HIGH_WATER,
    PredictionLogClosedError,
    PredictionLogError,
    PredictionLogFullError,
    PredictionLogWriteError,
    PredictionLogWriter,
)

__all__ = [
    "HIGH_WATER",
    "PredictionLogClosedError",
    "PredictionLogError",
    "PredictionLogFullError",
    "PredictionLogWriteError",
    "PredictionLogWriter",
]
