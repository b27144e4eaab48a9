"""Spark's reading of the input: the model's columns, each row numbered as the local engine counts
it, spread over the cores; and the scoring threads each task gets.

A Parquet input the project's scorer reads in its tasks (:mod:`pipelines.batch.plan`); this is
the reading of a CSV input, and of any input on MLflow's route (``spark_scorer="mlflow"``).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq

from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.options import BatchOptions
from pipelines.batch.reader import input_files, parquet_footers

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


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


def read_numbered(
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


def task_threads(spark: SparkSession, tasks: int) -> int:
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
        return frame, task_threads(spark, pieces)
    if threaded and spark.sparkContext.master.startswith("local"):
        return frame.coalesce(max(1, pieces)), task_threads(spark, pieces)
    return frame.repartition(parallelism), task_threads(spark, parallelism)
