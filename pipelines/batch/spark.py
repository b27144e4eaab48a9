"""The Spark engine: Spark reads and validates, the project's own scoring runs on Arrow batches.

Each executor's Python worker loads the model once, from its copy of the
driver's verified download (shipped with ``SparkContext.addFile``), checks
the copy's digest against the registered one, and scores every Arrow batch
with the local engine's code (:func:`pipelines.batch.local.scored_table`):
the same probabilities, scores, bands, decisions and reason codes, each row
with its number in the input (as the local engine counts them) and its id.
``spark_scorer="mlflow"`` keeps MLflow's own route (``mlflow.pyfunc.spark_udf``,
no reasons).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa

from credit_risk import registry
from credit_risk.config import ModelConfig
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.rules import FieldRule
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.local import output_schema, scored_table
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import BatchOptions, rejects_path
from pipelines.batch.reader import input_files
from pipelines.batch.validation import ChunkEncoder

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


def spark_session(master: str, conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession on ``master`` (``local[*]``, ``spark://host:7077``, ...); pyspark is an optional extra."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise registry.RegistryError(
            "the spark engine needs pyspark: pip install -r requirements-dev.txt (or use --engine local)"
        ) from exc
    # Executors must run this interpreter (it has the model's dependencies).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName("credit-risk-batch-score")
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").config("spark.ui.enabled", "false")
    if master.startswith("local"):
        # loopback only on a single machine
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _read_spark(spark: SparkSession, files: list[Path], fmt: str) -> SparkFrame:
    paths = [str(p) for p in files]
    if fmt == "csv":
        # all columns as text, validated below like the local engine does
        return spark.read.option("header", True).option("inferSchema", False).csv(paths)
    return spark.read.parquet(*paths)


def _numbered(spark: SparkSession, frame: SparkFrame, files: list[Path]) -> SparkFrame:
    """``frame`` with ``_row``: each row's 1-based number in the input, files in name order (as the
    local engine counts). One extra pass counts the rows of each file split; a row's number is its
    split's offset plus its position in the split (from ``monotonically_increasing_id``)."""
    from pyspark.sql import functions as F  # noqa: N812

    framed = frame.select(
        "*",
        F.monotonically_increasing_id().alias("_mid"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_start"),
    )
    splits = framed.groupBy("_file", "_start").agg(F.min("_mid").alias("_first"), F.count("*").alias("_n")).collect()
    order = {path.resolve().as_uri(): i for i, path in enumerate(files)}

    def file_rank(uri: str) -> int:
        path = Path(unquote(urlparse(uri).path))
        rank = order.get(path.resolve().as_uri())
        if rank is None:
            raise DataValidationError(f"spark read a file not in the input: {uri}")
        return rank

    offsets, total = [], 0
    for split in sorted(splits, key=lambda s: (file_rank(s["_file"]), s["_start"])):
        offsets.append((split["_file"], split["_start"], split["_first"], total))
        total += split["_n"]
    table = spark.createDataFrame(offsets, "_file string, _start long, _first long, _offset long")
    joined = framed.join(F.broadcast(table), ["_file", "_start"])
    row = F.col("_offset") + F.col("_mid") - F.col("_first") + F.lit(1)
    return joined.withColumn("_row", row).drop("_mid", "_file", "_start", "_first", "_offset")


def _read_spark(spark: SparkSession, files: list[Path], fmt: str) -> SparkFrame:
    paths = [str(p) for p in files]
    if fmt == "csv":
        # all columns as text, validated below like the local engine does
        return spark.read.option("header", True).option("inferSchema", False).csv(paths)
    return spark.read.parquet(*paths)


def _validated(spark: SparkSession, model: ScoringModel, options: BatchOptions) -> tuple[SparkFrame, str | None]:
    """The input with ``_row``, the schema's missing markers as null, and each row's broken rules."""
    from pyspark.sql import functions as F  # noqa: N812

    files, fmt = input_files(options.input)
    frame = _read_spark(spark, files, fmt)
    schema = model.schema
    missing = [spec.name for spec in schema.inputs if spec.name not in frame.columns]
    if missing:
        raise DataValidationError(f"{options.input}: missing column(s) the model needs: {', '.join(missing)}")
    id_name = options.id_column if options.id_column in frame.columns else None
    frame = _numbered(spark, frame.select(*([id_name] if id_name else []), *schema.input_names), files)
    if fmt == "csv":  # the schema's missing markers read as missing, as in the local engine
        markers = sorted({"", *schema.missing_values})
        frame = frame.select(
            *[
                F.when(F.trim(F.col(c)).isin(markers), F.lit(None)).otherwise(F.col(c)).alias(c)
                if c in schema.by_name
                else F.col(c)
                for c in frame.columns
            ]
        )
    rules = {spec.name: FieldRule(spec).spark_rule(F.col(spec.name)) for spec in schema.inputs}
    frame = frame.select(
        "_row",
        *([F.col(id_name)] if id_name else []),
        *[F.col(spec.name) for spec in schema.inputs],
        F.concat_ws("; ", *[F.when(r.isNotNull(), F.concat(F.lit(f"{n}: "), r)) for n, r in rules.items()]).alias(
            "_reason"
        ),
        F.coalesce(*[F.when(r.isNotNull(), F.lit(n)) for n, r in rules.items()]).alias("_field"),
        F.coalesce(*rules.values()).alias("_rule"),
    )
    return frame, id_name


def score_spark(
    spark: SparkSession, model_dir: Path, model: ScoringModel, columns: DecisionColumns, options: BatchOptions
) -> tuple[int, int]:
    """Validate in Spark, write the rejects, score the valid rows on Arrow batches.

    ``model_dir`` is the registered version's folder whose digest was checked:
    Spark scores exactly those bytes. Returns (rows read, rows rejected).
    """
    from pyspark.sql import functions as F  # noqa: N812

    frame, id_name = _validated(spark, model, options)
    schema = model.schema
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
    parallelism = spark.sparkContext.defaultParallelism
    if valid.rdd.getNumPartitions() < parallelism:  # one large Parquet row group is one partition
        valid = valid.repartition(parallelism)
    if options.spark_scorer == "mlflow":
        scored = _mlflow_scored(spark, valid, model_dir, columns, id_name, [s.name for s in schema.inputs])
    else:
        scored = _project_scored(spark, valid, model_dir, columns.config, id_name, options.reasons)
    scored.write.mode("overwrite").parquet(str(options.output))
    n_rejected = spark.read.parquet(str(rejects_path(options.output))).count()
    n_scored = spark.read.parquet(str(options.output)).count()
    return n_scored + n_rejected, n_rejected


# ------------------------------------------------------------------ the project's scoring on executors


def _spark_output_type(valid: SparkFrame, id_name: str | None, reasons: bool) -> Any:
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

    fields = [StructField("row", LongType())]
    if id_name is not None:
        fields.append(valid.schema[id_name])
    fields += [
        StructField("probability", DoubleType()),
        StructField("score", LongType()),
        StructField("risk_band", StringType()),
        StructField("decision", StringType()),
    ]
    if reasons:
        fields.append(StructField("reasons", ArrayType(StringType())))
    return StructType(fields)


def _project_scored(
    spark: SparkSession, valid: SparkFrame, model_dir: Path, config: ModelConfig, id_name: str | None, reasons: bool
) -> SparkFrame:
    """``valid`` scored by :func:`_score_batches` on every executor (``mapInArrow``)."""
    import functools

    shipped = model_dir.parent  # a fresh temporary folder per run: a unique name for addFile
    spark.sparkContext.addFile(str(shipped), recursive=True)
    job = _ExecutorJob(
        shipped=shipped.name,
        relative=str(model_dir.relative_to(shipped)),
        digest=registry.directory_digest(model_dir),
        config=config,
        reasons=reasons,
        id_name=id_name,
    )
    return valid.mapInArrow(functools.partial(_score_batches, job), _spark_output_type(valid, id_name, reasons))


class _ExecutorJob:
    """What an executor needs to score: where its copy of the model is, its digest, the policy."""

    def __init__(
        self, *, shipped: str, relative: str, digest: str, config: ModelConfig, reasons: bool, id_name: str | None
    ) -> None:
        self.shipped, self.relative, self.digest = shipped, relative, digest
        self.config, self.reasons, self.id_name = config, reasons, id_name

    @property
    def key(self) -> tuple[str, str, str, bool]:
        return self.shipped, self.relative, self.digest, self.reasons


_LOADED: dict[tuple[str, str, str, bool], tuple[ScoringModel, DecisionColumns, ChunkEncoder]] = {}


def _executor_model(job: _ExecutorJob) -> tuple[ScoringModel, DecisionColumns, ChunkEncoder]:
    """The model, loaded once per executor process from its verified local copy."""
    loaded = _LOADED.get(job.key)
    if loaded is None:
        import numba
        from pyspark import SparkFiles

        numba.set_num_threads(1)  # Spark runs one task per core: no threads within a task
        local = Path(SparkFiles.get(job.shipped)) / job.relative
        actual = registry.directory_digest(local)
        if actual != job.digest:
            raise registry.RegistryError(
                f"executor's model copy {local}: digest {actual[:12]}... is not the verified {job.digest[:12]}..."
            )
        model = ScoringModel.load(registry.scoring_dir(local), threads=1)
        columns = DecisionColumns(DecisionEngine(model, job.config), job.config, reasons=job.reasons)
        loaded = _LOADED[job.key] = (model, columns, ChunkEncoder(model))
    return loaded


def _score_batches(job: _ExecutorJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: each batch through the local engine's encoding and scoring (rows are valid already)."""
    model, columns, encoder = _executor_model(job)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        chunk = encoder.encode(batch)
        if chunk.rejects:  # Spark applied the same rule table: a row failing here is a bug, not bad input
            raise DataValidationError(f"row {batch.column('_row')[chunk.rejects[0][0]]}: {chunk.rejects[0][3]}")
        id_type = batch.schema.field(job.id_name).type if job.id_name else None
        schema = output_schema(job.id_name, id_type, job.reasons)
        rows = np.asarray(batch.column("_row"), dtype=np.int64)
        table = scored_table(model, columns, chunk, rows, batch, job.id_name, schema)
        table = table.set_column(
            table.schema.get_field_index("risk_band"), "risk_band", table["risk_band"].cast(pa.string())
        )
        table = table.set_column(
            table.schema.get_field_index("decision"), "decision", table["decision"].cast(pa.string())
        )
        yield from table.to_batches()


# ------------------------------------------------------------------ MLflow's own route


def _mlflow_scored(
    spark: SparkSession,
    valid: SparkFrame,
    model_dir: Path,
    columns: DecisionColumns,
    id_name: str | None,
    inputs: list[str],
) -> SparkFrame:
    """``mlflow.pyfunc.spark_udf`` for the probability, the policy in a pandas UDF; no reasons."""
    import mlflow
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    predict = mlflow.pyfunc.spark_udf(spark, str(model_dir), result_type="double", env_manager="local")
    scored = valid.select(
        F.col("_row").alias("row"),
        *([F.col(id_name)] if id_name else []),
        predict(*[F.col(name) for name in inputs]).alias("probability"),
    )
    out_schema = StructType(
        [
            *scored.schema.fields,
            StructField("score", LongType()),
            StructField("risk_band", StringType()),
            StructField("decision", StringType()),
        ]
    )
    return scored.mapInPandas(_policy_udf(columns), out_schema)


def _policy_udf(columns: DecisionColumns) -> Any:
    """A mapInPandas function adding score, band and decision with the local engine's code."""
    band_names = np.asarray(columns.engine.band_names, dtype=object)
    decisions = np.asarray(DECISIONS, dtype=object)

    def apply(frames: Iterator[Any]) -> Iterator[Any]:
        for frame in frames:
            p = frame["probability"].to_numpy(dtype=np.float64)
            frame["score"] = columns.engine.scores(p)
            frame["risk_band"] = band_names[columns.engine.band_index(p)]
            frame["decision"] = decisions[columns.engine.decision_index(p)]
            yield frame

    return apply
