"""The project's scoring on the executors: the local engine's reader, rule table, encoding, scores,
reasons and recourse in Spark's tasks, each task writing its own files, the driver committing them.

What runs in the tasks is :mod:`pipelines.batch.executor` (importable by name on every worker);
this module plans the tasks and commits what they wrote.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from credit_risk import registry
from credit_risk.config import ModelConfig
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.commit import WRITTEN_TYPE, StagedOutput, Written
from pipelines.batch.executor import ExecutorJob, score_partition, score_pieces
from pipelines.batch.local import output_schema, rejects_schema
from pipelines.batch.options import BatchOptions
from pipelines.batch.plan import parquet_columns, parquet_tasks
from pipelines.batch.reader import input_files, parquet_footers
from pipelines.batch.spark.reading import read_numbered, task_threads

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


def score_with_project(
    spark: SparkSession,
    model_dir: Path,
    model: ScoringModel,
    config: ModelConfig,
    options: BatchOptions,
    metadata: dict[str, str],
) -> tuple[int, int]:
    """Every row through the local engine's reader, rule table, encoding, scores, reasons and recourse on
    the executors, in one pass, each task writing its scored and rejected rows itself; the driver commits
    the files of the attempts Spark counted (:class:`~pipelines.batch.commit.StagedOutput`)."""
    plan = _planned(spark, model, options)
    shipped = model_dir.parent  # a fresh temporary folder per run: a unique name for addFile
    spark.sparkContext.addFile(str(shipped), recursive=True)
    staged = StagedOutput(options.output)
    try:
        job = ExecutorJob(
            shipped=shipped.name,
            relative=str(model_dir.relative_to(shipped)),
            digest=registry.directory_digest(model_dir),
            config=config,
            reasons=options.reasons,
            recourse=options.recourse,
            id_name=plan.id_name,
            id_type=plan.id_type,
            staging=str(staged.folder),
            metadata=metadata,
            threads=plan.threads,
            chunk_rows=options.chunk_rows,
        )
        answers = plan.tasks.mapInArrow(functools.partial(plan.score, job), WRITTEN_TYPE).collect()
        written = [Written(**row.asDict()) for row in answers]
        errors = sorted({w.error for w in written if w.error})
        if errors:
            raise DataValidationError("; ".join(errors))
        scored = output_schema(plan.id_name, plan.id_type, options.reasons, metadata, recourse=options.recourse)
        return staged.commit(written, scored, rejects_schema(plan.id_type, metadata))
    except BaseException:
        staged.discard()
        raise


class _Plan(NamedTuple):
    """What the tasks run over and the executor function they run; the id column, the type its ids are
    written in, and the scoring threads of each task."""

    tasks: SparkFrame
    score: Callable[..., Iterator[Any]]
    id_name: str | None
    id_type: Any
    threads: int


def _planned(spark: SparkSession, model: ScoringModel, options: BatchOptions) -> _Plan:
    """A Parquet input is read by the tasks themselves, whole row groups each, planned from the footers
    (:func:`~pipelines.batch.plan.parquet_tasks`, :func:`~pipelines.batch.executor.score_pieces`): no
    rows pass through the JVM. A CSV input is read and numbered by Spark
    (:func:`~pipelines.batch.spark.reading.read_numbered`, :func:`~pipelines.batch.executor.score_partition`)."""
    from pyspark.sql.pandas.types import to_arrow_type

    files, fmt = input_files(options.input)
    if fmt == "csv":
        frame, id_name, threads = read_numbered(spark, model, options)
        id_type = to_arrow_type(frame.schema[id_name].dataType) if id_name else None
        return _Plan(frame, score_partition, id_name, id_type, threads)
    footers = parquet_footers(files)
    id_name, id_type = parquet_columns(model.schema, options.id_column, files, footers)
    tasks = parquet_tasks(files, footers, spark.sparkContext.defaultParallelism)
    score = functools.partial(score_pieces, tasks=tasks)
    frame = spark.range(len(tasks), numPartitions=len(tasks))
    return _Plan(frame, score, id_name, id_type, task_threads(spark, len(tasks)))
