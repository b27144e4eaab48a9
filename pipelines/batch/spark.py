"""The Spark engine: the project's own code reads, validates, scores and writes the rows in Spark's tasks.

Each executor's Python worker loads the model once, from its copy of the
driver's verified download (shipped with ``SparkContext.addFile``), checks
the copy's digest against the registered one, and runs the local engine's
reader, rule table, encoding and scoring
(:func:`pipelines.batch.reader.parquet_batches`,
:class:`pipelines.batch.validation.ChunkEncoder`,
:func:`pipelines.batch.local.scored_table`): the same rejects, probabilities,
scores, bands, decisions, reason codes and, with ``recourse``, what would
change each decision (:mod:`credit_risk.recourse`), each row with its number in the
input (as the local engine counts them) and its id. A Parquet input is read by
the tasks, row groups planned from the footers (:mod:`pipelines.batch.plan`);
a CSV input is read and numbered by Spark and handed over as Arrow batches
(``mapInArrow``). Each task writes its rows with pyarrow, in the local
engine's schemas and metadata; the driver commits the files of the attempts
Spark counted (:mod:`pipelines.batch.commit`). ``spark_scorer="mlflow"``
keeps MLflow's own route (Spark reads, the rule table in Spark SQL, then
``mlflow.pyfunc.spark_udf``; no reasons, no recourse).
"""

from __future__ import annotations

import csv
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow.parquet as pq

from credit_risk import registry
from credit_risk.config import ModelConfig
from credit_risk.decision import DECISIONS
from credit_risk.rules import FieldRule
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.commit import WRITTEN_TYPE, StagedOutput, Written
from pipelines.batch.executor import ExecutorJob, score_partition, score_pieces
from pipelines.batch.local import output_schema, rejects_schema
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import BatchOptions, rejects_path
from pipelines.batch.output import marked, refuse_foreign_output, write_marker
from pipelines.batch.plan import parquet_columns, parquet_tasks
from pipelines.batch.reader import input_files, parquet_footers

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


LOCAL_JAVA_OPTIONS = "-XX:+UseSerialGC"  # the driver JVM's options in local mode (see spark_session)


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
    # Arrow batches of the local engine's chunk size (Spark's default is 10,000 rows): fewer round trips
    # to the Python worker and larger calls into the compiled kernels
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", "65536")
    if master.startswith("local"):
        # loopback only on a single machine
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        # the driver JVM is the executor here, sharing the cores with the Python workers: the serial
        # collector runs no concurrent GC threads beside them (measured on 2 cores, 1M rows: the first
        # job about 0.5 s faster than with G1, the second no slower); a user's own options replace these
        builder = builder.config("spark.driver.extraJavaOptions", LOCAL_JAVA_OPTIONS)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_path(path: Path) -> str:
    """The absolute, normalised path Spark is given for ``path``: what its ``_metadata.file_path`` decodes to."""
    return os.path.abspath(path)


def _file_keys(spark: SparkSession, path: Path) -> list[str]:
    """How ``_metadata.file_path`` names ``path``: Hadoop's qualified, percent-encoded URI of it, asked
    of the JVM (Spark writes a local file ``file:/a%20b``, the URI ``file:///a%20b``: both are keys)."""
    jvm_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(_spark_path(path))  # type: ignore[union-attr]
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    uri = str(jvm_path.getFileSystem(hadoop).makeQualified(jvm_path).toUri().toString())
    return sorted({uri, re.sub("^file:///", "file:/", uri)})


def _numbered_parquet(
    spark: SparkSession, frame: SparkFrame, files: list[Path], footers: list[pq.FileMetaData]
) -> SparkFrame:
    """``frame`` with ``_row``: each row's 1-based number in the input, files in name order (as the
    local engine counts), with no extra pass: the file's offset (row counts from the Parquet footers)
    plus the row's index in its file (``_metadata.row_index``). The file is looked up by the name Spark
    gives it (:func:`_file_keys`), a string comparison per row, not a decoding."""
    from pyspark.sql import functions as F  # noqa: N812

    offsets, total = [], 0
    for path, footer in zip(files, footers, strict=True):
        offsets += [item for key in _file_keys(spark, path) for item in (F.lit(key), F.lit(total).cast("long"))]
        total += footer.num_rows
    name = F.col("_metadata.file_path")
    offset = F.create_map(*offsets)[name]
    unknown = F.raise_error(F.concat(F.lit("spark read a file not in the input: "), name))
    row = F.when(offset.isNull(), unknown).otherwise(offset + F.col("_metadata.row_index") + F.lit(1))
    return frame.withColumn("_row", row.cast("long"))


def _numbered(spark: SparkSession, frame: SparkFrame, files: list[Path]) -> SparkFrame:
    """``frame`` with ``_row``: each row's 1-based number in the input, files in name order (as the
    local engine counts). For CSV, which has no row index: one extra pass counts the rows of each file
    split; a row's number is its split's offset plus its position in the split (from
    ``monotonically_increasing_id``)."""
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


# Arrow types whose Spark type reads the same Parquet column as Spark's own inference would give it
_PLAIN_TYPES = ("bool", "int8", "int16", "int32", "int64", "float", "double", "string", "large_string")


def _parquet_schema(footers: list[pq.FileMetaData]) -> Any:
    """The input's Spark schema from the footers the engine reads anyway, so that Spark does not run a
    job to infer it; None (Spark infers) when the files differ or hold a type outside ``_PLAIN_TYPES``."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schemas = [footer.schema.to_arrow_schema().remove_metadata() for footer in footers]
    if any(not schema.equals(schemas[0]) for schema in schemas[1:]):
        return None
    if any(str(field.type) not in _PLAIN_TYPES for field in schemas[0]):
        return None
    return from_arrow_schema(schemas[0])


def _same_csv_columns(files: list[Path]) -> None:
    """Spark reads a CSV folder's columns by position, under one file's header (the local engine reads
    them by name): every file must name the same columns in the same order."""
    first: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8-sig") as lines:
            header = next(csv.reader(lines), [])
        if path == files[0]:
            first = header
        elif header != first:
            where = next(i for i in range(max(len(header), len(first))) if header[i : i + 1] != first[i : i + 1])
            here = header[where] if where < len(header) else "nothing"
            there = first[where] if where < len(first) else "nothing"
            raise DataValidationError(
                f"{path}: column {where + 1} is {here!r} here and {there!r} in {files[0]}; the spark engine "
                "reads a CSV folder's columns by position, so every file must have the same header"
            )


def _read_spark(spark: SparkSession, files: list[Path], fmt: str, footers: list[pq.FileMetaData]) -> SparkFrame:
    paths = [_spark_path(p) for p in files]
    if fmt == "csv":
        _same_csv_columns(files)
        # all columns as text, validated below like the local engine does
        return spark.read.option("header", True).option("inferSchema", False).csv(paths)
    schema = _parquet_schema(footers)
    return (spark.read if schema is None else spark.read.schema(schema)).parquet(*paths)


def _read_numbered(
    spark: SparkSession, model: ScoringModel, options: BatchOptions
) -> tuple[SparkFrame, str | None, int]:
    """The input's id and model columns with ``_row``, the schema's missing markers read as null, spread
    over the cores; and the scoring threads each task gets (:func:`_spread`)."""
    from pyspark.sql import functions as F  # noqa: N812

    files, fmt = input_files(options.input)
    footers = parquet_footers(files) if fmt == "parquet" else []
    frame = _read_spark(spark, files, fmt, footers)
    schema = model.schema
    missing = [spec.name for spec in schema.inputs if spec.name not in frame.columns]
    if missing:
        raise DataValidationError(f"{options.input}: missing column(s) the model needs: {', '.join(missing)}")
    id_name = options.id_column if options.id_column in frame.columns else None
    frame = frame.select(*([id_name] if id_name else []), *schema.input_names)
    if fmt == "parquet":
        frame = _numbered_parquet(spark, frame, files, footers)
        # Spark reads a row group in one task (a split that holds no row group's middle reads nothing)
        pieces = sum(footer.num_row_groups for footer in footers)
    else:
        frame = _numbered(spark, frame, files)
        pieces = frame.rdd.getNumPartitions()  # CSV splits by bytes
        # the schema's missing markers read as missing, as in the local engine
        markers = sorted({"", *schema.missing_values})
        frame = frame.select(
            *[
                F.when(F.trim(F.col(c)).isin(markers), F.lit(None)).otherwise(F.col(c)).alias(c)
                if c in schema.by_name
                else F.col(c)
                for c in frame.columns
            ]
        )
    frame, threads = _spread(spark, frame, pieces, threaded=options.spark_scorer == "project")
    return frame, id_name, threads


def _task_threads(spark: SparkSession, tasks: int) -> int:
    """The scoring threads of each of ``tasks`` tasks: on one machine (``local[...]``), fewer tasks than
    cores share the cores; otherwise ``spark.task.cpus``."""
    parallelism = spark.sparkContext.defaultParallelism
    if tasks < parallelism and spark.sparkContext.master.startswith("local"):
        return parallelism // max(1, tasks)
    return int(spark.conf.get("spark.task.cpus", "1"))


def _spread(spark: SparkSession, frame: SparkFrame, pieces: int, *, threaded: bool) -> tuple[SparkFrame, int]:
    """``frame`` over the cores, and the scoring threads per task, for an input Spark reads in ``pieces``
    tasks. On one machine (``local[...]``), for a scorer that runs on threads (``threaded``: the
    project's), an input of fewer pieces than cores (one large row group) is read in that many tasks
    (Spark's other splits would start a Python worker for no rows), each scoring on its share of the
    cores' threads, without shuffling the rows; otherwise (a cluster, or ``spark_udf``, one thread a
    task) it is repartitioned, and each task scores on ``spark.task.cpus`` threads."""
    parallelism = spark.sparkContext.defaultParallelism
    if pieces >= parallelism:
        return frame, _task_threads(spark, pieces)
    if threaded and spark.sparkContext.master.startswith("local"):
        return frame.coalesce(max(1, pieces)), _task_threads(spark, pieces)
    return frame.repartition(parallelism), _task_threads(spark, parallelism)


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
        return _score_with_project(spark, model_dir, model, columns.config, options, metadata)
    frame, id_name, _ = _read_numbered(spark, model, options)
    _score_with_mlflow(spark, frame, model_dir, model, columns, id_name, options)
    encoded = {key.encode(): value.encode() for key, value in metadata.items()}
    write_marker(Path(options.output), "scored", encoded)
    write_marker(rejects_path(options.output), "rejects", encoded)
    n_rejected = _parquet_rows(rejects_path(options.output))
    return _parquet_rows(options.output) + n_rejected, n_rejected


# ------------------------------------------------------------------ the project's scoring on executors


def _score_with_project(
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
    rows pass through the JVM. A CSV input is read and numbered by Spark (:func:`_read_numbered`,
    :func:`~pipelines.batch.executor.score_partition`)."""
    from pyspark.sql.pandas.types import to_arrow_type

    files, fmt = input_files(options.input)
    if fmt == "csv":
        frame, id_name, threads = _read_numbered(spark, model, options)
        id_type = to_arrow_type(frame.schema[id_name].dataType) if id_name else None
        return _Plan(frame, score_partition, id_name, id_type, threads)
    footers = parquet_footers(files)
    id_name, id_type = parquet_columns(model.schema, options.id_column, files, footers)
    tasks = parquet_tasks(files, footers, spark.sparkContext.defaultParallelism)
    score = functools.partial(score_pieces, tasks=tasks)
    frame = spark.range(len(tasks), numPartitions=len(tasks))
    return _Plan(frame, score, id_name, id_type, _task_threads(spark, len(tasks)))


# ------------------------------------------------------------------ MLflow's own route


def _score_with_mlflow(
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
