"""MLflow's own route (``spark_scorer="mlflow"``): Spark reads, the rule table in Spark SQL, then
``mlflow.pyfunc.spark_udf`` for the probability and the local engine's policy in a pandas UDF; no
reasons, no recourse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from credit_risk.decision import DECISIONS
from credit_risk.rules import FieldRule
from credit_risk.scoring import ScoringModel
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import BatchOptions, rejects_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


def score_with_mlflow(
    spark: SparkSession,
    frame: SparkFrame,
    model_dir: Path,
    model: ScoringModel,
    columns: DecisionColumns,
    id_name: str | None,
    options: BatchOptions,
) -> None:
    """The rule table in Spark SQL, ``mlflow.pyfunc.spark_udf`` for the probability, the policy in a
    pandas UDF; no reasons."""
    import mlflow
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    schema = model.schema
    rules = {spec.name: FieldRule(spec).spark_rule(F.col(spec.name)) for spec in schema.inputs}
    frame = frame.select(
        "*",
        F.concat_ws("; ", *[F.when(r.isNotNull(), F.concat(F.lit(f"{n}: "), r)) for n, r in rules.items()]).alias(
            "_reason"
        ),
        F.coalesce(*[F.when(r.isNotNull(), F.lit(n)) for n, r in rules.items()]).alias("_field"),
        F.coalesce(*rules.values()).alias("_rule"),
    )
    rejects = frame.where(F.col("_reason") != "").select(
        F.col("_row").alias("row"),
        *([F.col(id_name).alias("id")] if id_name else []),
        F.col("_field").alias("field"),
        F.col("_rule").alias("rule"),
        F.col("_reason").alias("reason"),
    )
    rejects.write.mode("overwrite").parquet(str(rejects_path(options.output)))
    valid = frame.where(F.col("_reason") == "").select(
        "_row",
        *([F.col(id_name)] if id_name else []),
        *[
            F.col(s.name).cast("string")
            if s.type == "categorical"
            else F.col(s.name).cast("double").cast("long" if s.type == "integer" else "double")
            for s in schema.inputs
        ],
    )
    predict = mlflow.pyfunc.spark_udf(spark, str(model_dir), result_type="double", env_manager="local")
    scored = valid.select(
        F.col("_row").alias("row"),
        *([F.col(id_name)] if id_name else []),
        predict(*[F.col(s.name) for s in schema.inputs]).alias("probability"),
    )
    out_schema = StructType(
        [
            *scored.schema.fields,
            StructField("score", LongType()),
            StructField("risk_band", StringType()),
            StructField("decision", StringType()),
        ]
    )
    scored.mapInPandas(_policy_udf(columns), out_schema).write.mode("overwrite").parquet(str(options.output))


def _policy_udf(columns: DecisionColumns) -> Any:
    """A mapInPandas function adding score, band and decision with the local engine's code."""
    band_names = np.asarray(columns.engine.band_names, dtype=object)
    decisions = np.asarray(DECISIONS, dtype=object)

    def apply(frames: Iterator[Any]) -> Iterator[Any]:
        for frame in frames:
            decided = columns.engine.decide_probabilities(frame["probability"].to_numpy(dtype=np.float64))
            frame["score"] = decided.score
            frame["risk_band"] = band_names[decided.band_index]
            frame["decision"] = decisions[columns.decision_index(decided)]
            yield frame

    return apply
