"""The Spark engine's entry: :func:`score_spark` scores the input with the project's scorer
(:mod:`.project`) or MLflow's (:mod:`.mlflow_route`) and says how many rows it read and rejected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from credit_risk.scoring import ScoringModel
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import BatchOptions, rejects_path
from pipelines.batch.output import marked, refuse_foreign_output, write_marker
from pipelines.batch.spark.mlflow_route import score_with_mlflow
from pipelines.batch.spark.project import score_with_project
from pipelines.batch.spark.reading import read_numbered

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _parquet_rows(folder: Path) -> int:
    """The rows of the Parquet files Spark wrote into ``folder``, from their footers."""
    import pyarrow.dataset as ds

    return ds.dataset(str(folder), format="parquet").count_rows()


def score_spark(
    spark: SparkSession,
    model_dir: Path,
    model: ScoringModel,
    columns: DecisionColumns,
    options: BatchOptions,
    *,
    metadata: dict[str, str],
) -> tuple[int, int]:
    """Score the input in Spark into ``options.output`` and its rejects file; (rows read, rows rejected).

    ``model_dir`` is the registered version's folder whose digest was checked:
    Spark scores exactly those bytes. ``metadata`` goes into the scored files' schema, as the local
    engine writes it. What is at the output is replaced only if it is an earlier output of this job
    (:mod:`pipelines.batch.output`).
    """
    refuse_foreign_output(options.output, "spark")
    metadata = marked(metadata)
    if options.spark_scorer == "project":
        return score_with_project(spark, model_dir, model, columns.config, options, metadata)
    frame, id_name, _ = read_numbered(spark, model, options)
    score_with_mlflow(spark, frame, model_dir, model, columns, id_name, options)
    encoded = {key.encode(): value.encode() for key, value in metadata.items()}
    write_marker(Path(options.output), "scored", encoded)
    write_marker(rejects_path(options.output), "rejects", encoded)
    n_rejected = _parquet_rows(rejects_path(options.output))
    return _parquet_rows(options.output) + n_rejected, n_rejected
