"""Batch scoring, in parts: options, reader, validation, model, local engine, Spark engine, the job.

``python -m pipelines.batch_score`` (and the MLproject's ``batch_score``) runs :func:`job.main`.
"""

from pipelines.batch.job import DESCRIPTION, batch_score, log_summary, main
from pipelines.batch.local import Progress, score_local
from pipelines.batch.model import DecisionColumns, contributions_like_the_service
from pipelines.batch.options import BatchOptions, BatchSummary, Engine, rejects_path
from pipelines.batch.reader import InputReader, input_files
from pipelines.batch.spark import score_spark, spark_session
from pipelines.batch.validation import ChunkEncoder, EncodedChunk

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
    "contributions_like_the_service",
    "input_files",
    "log_summary",
    "main",
    "rejects_path",
    "score_local",
    "score_spark",
    "spark_session",
]
