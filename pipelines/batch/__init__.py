"""Batch scoring, in parts: options, reader, validation, model, local engine, Spark engine (its plan, its
executors' code and its commit), the job.

``python -m pipelines.batch_score`` (and the MLproject's ``batch_score``) runs :func:`job.main`.

Names are imported on first use: a Spark executor's worker imports
:mod:`pipelines.batch.executor` through this package and must not pay for
the job's MLflow imports.
"""

import importlib
from typing import Any

_WHERE = {
    "BatchOptions": "pipelines.batch.options",
    "BatchSummary": "pipelines.batch.options",
    "ChunkEncoder": "pipelines.batch.validation",
    "DESCRIPTION": "pipelines.batch.job",
    "DecisionColumns": "pipelines.batch.model",
    "EncodedChunk": "pipelines.batch.validation",
    "Engine": "pipelines.batch.options",
    "InputReader": "pipelines.batch.reader",
    "Progress": "pipelines.batch.local",
    "batch_score": "pipelines.batch.job",
    "input_files": "pipelines.batch.reader",
    "log_summary": "pipelines.batch.job",
    "main": "pipelines.batch.job",
    "rejects_path": "pipelines.batch.options",
    "score_local": "pipelines.batch.local",
    "score_spark": "pipelines.batch.spark",
    "spark_session": "pipelines.batch.spark",
}

__all__ = [
    "DESCRIPTION",
    "BatchOptions",
    "BatchSummary",
    "ChunkEncoder",
    "DecisionColumns",
    "EncodedChunk",
    "Engine",
    "InputReader",
    "Progress",
    "batch_score",
    "input_files",
    "log_summary",
    "main",
    "rejects_path",
    "score_local",
    "score_spark",
    "spark_session",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
