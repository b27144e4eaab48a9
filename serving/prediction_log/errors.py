"""The prediction log writer's refusals: what the service maps to a 503 (the message says why)."""

from __future__ import annotations


class PredictionLogError(RuntimeError):
    """The prediction log cannot start or take records; the message says why."""


class PredictionLogFullError(PredictionLogError):
    """Too many records wait for Parquet (``queue_max_records``): the service should answer 503."""


class PredictionLogClosedError(PredictionLogError):
    """``submit`` after ``close`` (or before ``start``): the service should answer 503."""


class PredictionLogWriteError(PredictionLogError):
    """The write-ahead append of these records failed: they are not logged and must not be answered."""
