"""Batch scoring: re-score a portfolio (CSV or Parquet, a file or a folder) with a registered version.

``mlflow run . -e batch_score -P input=... -P output=... [-P engine=local|spark] [-P model=production|N]``
(or ``python -m pipelines.batch_score --input ... --output ...``).

The version is resolved through the registry (an alias, or a version number),
its artifact digest is checked against the ``artifact_sha256`` tag as the
service does, and scores, bands and decisions come from the same policy.

- ``local`` streams the input in chunks (memory bounded by the chunk size,
  not the input size), validates each chunk against the model's feature
  schema with vectorised rules, encodes straight from Arrow into the model's
  float32 layout and streams probability, score, band, decision and reason
  codes to one Parquet file. Bad rows go to ``<output>.rejects.parquet`` with
  their row number and the field and rule they break.
- ``spark`` scores with ``mlflow.pyfunc.spark_udf`` in a SparkSession on the
  configured master (``local[*]`` by default) and writes a Parquet folder.
  Reason codes are not computed on Spark (TreeSHAP per row is the costly part;
  use the local engine when reasons are needed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ModelConfig, ProjectConfig, Settings, load_project_config
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.schema import DataValidationError, FeatureSchema, FieldSpec
from credit_risk.scoring import ScoringModel
from pipelines.cli import add_config_dir, run_job

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

Engine = Literal["local", "spark"]
REQUIRED = "is required"
NOT_INTEGER = "must be an integer"
NOT_WHOLE = "must be a whole number"
# A decimal number as text (CSV); anything else in an integer field is "not an integer".
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class BatchOptions:
    """What to score, where to write it, with which model and engine."""

    input: Path
    output: Path
    engine: Engine = "local"
    model: str = "production"  # an alias, or a version number
    reasons: bool = True
    id_column: str = "applicant_id"  # carried through to the output when the input has it
    chunk_rows: int = 65_536
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = field(default_factory=dict)
    progress: bool = True


@dataclass(frozen=True)
class BatchSummary:
    engine: str
    model_name: str
    model_version: str
    rows_read: int
    rows_scored: int
    rows_rejected: int
    seconds: float
    output: Path
    rejects: Path

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def rejects_path(output: Path) -> Path:
    """Bad rows are written next to the output: ``scores.parquet`` -> ``scores.rejects.parquet``."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.rejects.parquet")


# ------------------------------------------------------------------ the model


# ------------------------------------------------------------------ decisions, vectorised


class DecisionColumns:
    """The :class:`DecisionEngine`'s outputs as Arrow columns, for a whole chunk at once."""

    def __init__(self, engine: DecisionEngine, config: ModelConfig) -> None:
        self.engine = engine
        self._max_reasons = config.decision.max_reasons
        self._reason_codes = pa.array([s.reason_code for s in engine.model.encoder.fields], type=pa.string())

    def reason_lists(self, contributions: np.ndarray) -> pa.ListArray:
        """Per row, the codes of the fields that raised the risk most, largest first (as the engine)."""
        k = min(self._max_reasons, contributions.shape[1])
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
        keep = np.take_along_axis(contributions, order, axis=1) > 0
        offsets = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        values = self._reason_codes.take(pa.array(order[keep], type=pa.int32()))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def arrow_columns(self, probabilities: np.ndarray) -> dict[str, pa.Array]:
        return {
            "probability": pa.array(probabilities, type=pa.float64()),
            "score": pa.array(self.engine.scores(probabilities), type=pa.int64()),
            "risk_band": pa.DictionaryArray.from_arrays(
                self.engine.band_index(probabilities), list(self.engine.band_names)
            ),
            "decision": pa.DictionaryArray.from_arrays(self.engine.decision_index(probabilities), list(DECISIONS)),
        }


# ------------------------------------------------------------------ reading the input


def input_files(path: Path) -> tuple[list[Path], str]:
    """The files to read (a folder's in name order) and their format, ``csv`` or ``parquet``."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
        if not files:
            raise DataValidationError(f"{path}: no .csv or .parquet files in this folder")
    else:
        raise DataValidationError(f"{path}: input not found")
    formats = {_SUFFIXES.get(p.suffix.lower()) for p in files}
    if None in formats:
        raise DataValidationError(f"{path}: input must be .csv or .parquet")
    if len(formats) > 1:
        raise DataValidationError(f"{path}: mixes CSV and Parquet files; use one format per input")
    return files, formats.pop()


class InputReader:
    """Streams record batches from the input's files, in file and row order.

    Memory is bounded by the chunk size whatever the input size: Parquet is
    read batch by batch within row groups (no pre-buffering of whole row
    groups), CSV block by block with every schema column read as text (the
    rules below then judge each row, rather than the reader failing the file).
    """

    def __init__(self, path: Path, schema: FeatureSchema, *, id_column: str) -> None:
        self.path = Path(path)
        self.files, self.format = input_files(path)
        self._text = {spec.name: pa.string() for spec in schema.fields} | {id_column: pa.string()}
        self._categoricals = [s.name for s in schema.inputs if s.type == "categorical"]
        self.schema = self._file_schema(self.files[0])

    def _file_schema(self, path: Path) -> pa.Schema:
        try:
            if self.format == "parquet":
                return pq.read_schema(path)
            with pacsv.open_csv(path, convert_options=self._csv_convert(None)) as reader:
                return reader.schema
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataValidationError(f"{path}: cannot read this {self.format} file: {exc}") from exc

    def _csv_convert(self, columns: list[str] | None) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types=self._text, include_columns=columns, null_values=[""], strings_can_be_null=True
        )

    def batches(self, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        for path in self.files:
            missing = [name for name in columns if name not in self._file_schema(path).names]
            if missing:
                raise DataValidationError(f"{path}: missing column(s): {', '.join(missing)}")
            try:
                yield from self._file_batches(path, columns, chunk_rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise DataValidationError(f"{path}: cannot read this {self.format} file: {exc}") from exc

    def _file_batches(self, path: Path, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # categoricals as dictionaries: validation and encoding then look at the few distinct values
            parquet = pq.ParquetFile(path, read_dictionary=self._categoricals, pre_buffer=False, buffer_size=1 << 20)
            yield from parquet.iter_batches(batch_size=chunk_rows, columns=columns)
            return
        # CSV blocks are sized in bytes: about 200 bytes per applicant row
        read = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 200))
        with pacsv.open_csv(path, read_options=read, convert_options=self._csv_convert(columns)) as reader:
            yield from reader


# ------------------------------------------------------------------ validation and encoding


@dataclass
class EncodedChunk:
    matrix: np.ndarray  # float32, one row per valid input row (valid until the next chunk is encoded)
    valid: np.ndarray | None  # positions of the valid rows in the chunk; None when all are valid
    rejects: list[tuple[int, str, str, str]]  # (position, first field, its rule, every "field: rule")


@dataclass
class _Check:
    """One field's verdict on a chunk: which rows break which rule (None: no bad rows)."""

    spec: FieldSpec
    bad: np.ndarray
    rule: np.ndarray  # index into rules, per row
    rules: list[str]


class ChunkEncoder:
    """Validates a record batch against the model's inputs and encodes it, column by column.

    The rules are the schema's (``FeatureSchema.check_frame``): a categorical
    must be one of its codes; an integer must be a whole number in [min, max].
    The one-hot and integer columns are written into a reused float32 buffer
    laid out exactly as :class:`credit_risk.scoring.Encoder` lays it out.
    """

    def __init__(self, model: ScoringModel) -> None:
        encoder = model.encoder
        self.width = encoder.width
        self.fields = list(encoder.fields)
        position = {name: i for i, name in enumerate(encoder.columns)}
        self._categoricals = [s for s in self.fields if s.type == "categorical"]
        self._integers = [s for s in self.fields if s.type == "integer"]
        # per categorical: the encoded column of each code, in the order of its codes
        self._code_columns = [np.asarray([position[f"{s.name}={c}"] for c in s.codes]) for s in self._categoricals]
        self._integer_columns = np.asarray([position[s.name] for s in self._integers], dtype=np.intp)
        self._codes = {s.name: pa.array(s.codes, type=pa.string()) for s in self._categoricals}
        self._buffer = np.zeros((0, self.width), dtype=np.float32)
        self._row_offsets = np.zeros(0, dtype=np.intp)

    def encode(self, batch: pa.RecordBatch) -> EncodedChunk:
        hot: list[np.ndarray] = []  # per categorical: each row's encoded column
        numbers: list[np.ndarray] = []  # per integer field: each row's value
        checks: list[_Check] = []
        for spec, columns in zip(self._categoricals, self._code_columns, strict=True):
            index, check = self._categorical(spec, batch.column(spec.name))
            hot.append(columns[index])
            checks += [check] if check else []
        for spec in self._integers:
            values, check = self._integer(spec, batch.column(spec.name))
            numbers.append(values)
            checks += [check] if check else []
        valid = None
        if checks:
            valid = np.flatnonzero(~np.logical_or.reduce([c.bad for c in checks]))
            hot = [column[valid] for column in hot]
            numbers = [values[valid] for values in numbers]
        rows = batch.num_rows if valid is None else len(valid)
        matrix = self._matrix(rows)
        for column, values in zip(self._integer_columns, numbers, strict=True):
            matrix[:, column] = values
        # one-hot cells by flat position (row offset + column): one scatter per field
        flat, offsets = matrix.reshape(-1), self._row_offsets[:rows]
        for columns in hot:
            flat[offsets + columns] = 1.0
        return EncodedChunk(matrix, valid, self._reject_rows(checks) if checks else [])

    def _matrix(self, rows: int) -> np.ndarray:
        """A zeroed (rows, width) view of a reused buffer: no fresh pages to fault in per chunk."""
        if len(self._buffer) < rows:
            self._buffer = np.zeros((rows, self.width), dtype=np.float32)
            self._row_offsets = np.arange(rows, dtype=np.intp) * self.width
        matrix = self._buffer[:rows]
        matrix.fill(0.0)
        return matrix

    def _reject_rows(self, checks: list[_Check]) -> list[tuple[int, str, str, str]]:
        bad_any = np.logical_or.reduce([c.bad for c in checks])
        order = {spec.name: i for i, spec in enumerate(self.fields)}
        checks = sorted(checks, key=lambda c: order[c.spec.name])  # report fields in schema order
        rejects = []
        for position in np.flatnonzero(bad_any):  # rare rows: a Python loop is fine here
            broken = [(c.spec.name, c.rules[c.rule[position]]) for c in checks if c.bad[position]]
            reason = "; ".join(f"{name}: {text}" for name, text in broken)
            rejects.append((int(position), broken[0][0], broken[0][1], reason))
        return rejects

    def _categorical(self, spec: FieldSpec, column: pa.Array) -> tuple[np.ndarray, _Check | None]:
        """Index of each row's code (0 where bad), and the check when some rows are bad."""
        codes = self._codes[spec.name]
        if pa.types.is_dictionary(column.type):
            # look up the few distinct values once, then map the row indices
            lookup = pc.index_in(column.dictionary.cast(pa.string()), value_set=codes).fill_null(-1).to_numpy()
            index = lookup[column.indices.fill_null(0).to_numpy(zero_copy_only=False)]
        else:
            text = column if pa.types.is_string(column.type) else column.cast(pa.string())
            index = np.array(pc.index_in(text, value_set=codes).fill_null(-1), dtype=np.intp)
        missing = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
        if missing is not None:
            index[missing] = -1
        bad = index < 0
        if not bad.any():
            return index, None
        index[bad] = 0
        rule = np.ones(len(index), dtype=np.int8) if missing is None else (~missing).astype(np.int8)
        return index, _Check(spec, bad, rule, [REQUIRED, f"must be one of {list(spec.codes)}"])

    def _integer(self, spec: FieldSpec, column: pa.Array) -> tuple[np.ndarray, _Check | None]:
        """Each row's value (0 where bad), and the check when some rows are bad."""
        kind = column.type
        if pa.types.is_integer(kind) and not column.null_count:
            values = column.to_numpy()
            if not ((values < spec.min) | (values > spec.max)).any():  # the common case: one pass, no copies
                return values, None
        n = len(column)
        missing = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(kind):
            number = column.fill_null(0).to_numpy().astype(np.float64)
            not_number = np.zeros(n, dtype=bool)
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            number = np.array(column.cast(pa.float64()).fill_null(0.0), dtype=np.float64)
            not_number = ~np.isfinite(number)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text = pc.utf8_trim_whitespace(column)
            is_number = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
            number = np.array(pc.cast(pc.if_else(is_number, text, "0"), pa.float64()), dtype=np.float64)
            not_number = ~is_number.to_numpy(zero_copy_only=False) | ~np.isfinite(number)
        else:
            number = np.zeros(n)
            not_number = np.ones(n, dtype=bool)
        not_number &= ~missing
        ok = ~(missing | not_number)
        fractional = ok & (np.mod(number, 1.0) != 0)
        outside = ok & ~fractional & ((number < spec.min) | (number > spec.max))
        bad = ~ok | fractional | outside
        if not bad.any():
            return number, None
        number[bad] = 0.0
        rule = np.select([missing, not_number, fractional], [0, 1, 2], default=3).astype(np.int8)
        rules = [REQUIRED, NOT_INTEGER, NOT_WHOLE, f"must be in [{spec.min}, {spec.max}]"]
        return number, _Check(spec, bad, rule, rules)


# ------------------------------------------------------------------ progress


class Progress:
    """Rows and rows/s on stderr, at most once a second (one updating line on a terminal)."""

    def __init__(self, *, enabled: bool, every_seconds: float = 1.0) -> None:
        self.enabled = enabled
        self.every = every_seconds
        self.started = time.perf_counter()
        self._last = self.started
        self._tty = sys.stderr.isatty()

    def update(self, rows: int, rejected: int, *, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self._last < self.every):
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        line = f"scored {rows - rejected:,} rows, rejected {rejected:,} ({rows / elapsed:,.0f} rows/s, {elapsed:.1f}s)"
        end = "\n" if final or not self._tty else ""
        print(("\r" if self._tty else "") + line, end=end, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the local engine


def _rejects_schema(id_type: pa.DataType | None) -> pa.Schema:
    fields = [pa.field("row", pa.int64())]
    if id_type is not None:
        fields.append(pa.field("id", id_type))
    return pa.schema([*fields, ("field", pa.string()), ("rule", pa.string()), ("reason", pa.string())])


def _output_schema(id_name: str | None, id_type: pa.DataType | None, reasons: bool, meta: dict[str, str]) -> pa.Schema:
    fields = [pa.field("row", pa.int64())]
    if id_name is not None:
        fields.append(pa.field(id_name, id_type))
    fields += [
        pa.field("probability", pa.float64()),
        pa.field("score", pa.int64()),
        pa.field("risk_band", pa.dictionary(pa.int8(), pa.string())),
        pa.field("decision", pa.dictionary(pa.int8(), pa.string())),
    ]
    if reasons:
        fields.append(pa.field("reasons", pa.list_(pa.string())))
    return pa.schema(fields, metadata=meta)


def score_local(
    model: ScoringModel, columns: DecisionColumns, options: BatchOptions, *, metadata: dict[str, str]
) -> tuple[int, int]:
    """Stream the input through validation, encoding, the model and the policy into Parquet.

    Returns (rows read, rows rejected).
    """
    reader = InputReader(options.input, model.schema, id_column=options.id_column)
    names = set(reader.schema.names)
    missing = [spec.name for spec in model.schema.inputs if spec.name not in names]
    if missing:
        raise DataValidationError(f"{options.input}: missing column(s) the model needs: {', '.join(missing)}")
    id_name = options.id_column if options.id_column in names else None
    id_type = reader.schema.field(id_name).type if id_name else None
    read = [spec.name for spec in model.schema.inputs] + ([id_name] if id_name else [])
    encoder = ChunkEncoder(model)
    out_schema = _output_schema(id_name, id_type, options.reasons, metadata)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    rows = rejected = 0
    progress = Progress(enabled=options.progress)
    with (
        pq.ParquetWriter(options.output, out_schema) as writer,
        pq.ParquetWriter(rejects_path(options.output), _rejects_schema(id_type)) as rejects,
    ):
        for batch in reader.batches(read, options.chunk_rows):
            chunk = encoder.encode(batch)
            row_numbers = np.arange(rows + 1, rows + batch.num_rows + 1, dtype=np.int64)
            if chunk.rejects:
                rejects.write_table(_rejects_table(chunk.rejects, row_numbers, batch, id_name, id_type))
            if len(chunk.matrix):
                writer.write_table(_scored_table(model, columns, chunk, row_numbers, batch, id_name, out_schema))
            rows += batch.num_rows
            rejected += len(chunk.rejects)
            progress.update(rows, rejected)
    progress.update(rows, rejected, final=True)
    return rows, rejected


def _scored_table(
    model: ScoringModel,
    columns: DecisionColumns,
    chunk: EncodedChunk,
    row_numbers: np.ndarray,
    batch: pa.RecordBatch,
    id_name: str | None,
    schema: pa.Schema,
) -> pa.Table:
    picked = None if chunk.valid is None else pa.array(chunk.valid)
    data: dict[str, Any] = {"row": row_numbers if chunk.valid is None else row_numbers[chunk.valid]}
    if id_name is not None:
        ids = batch.column(id_name)
        data[id_name] = ids if picked is None else ids.take(picked)
    probabilities = model.predict_proba(chunk.matrix)
    data.update(columns.arrow_columns(probabilities))
    if "reasons" in schema.names:
        data["reasons"] = columns.reason_lists(model.field_contributions(chunk.matrix))
    return pa.Table.from_pydict(data, schema=schema)


def _rejects_table(
    rejects: list[tuple[int, str, str, str]],
    row_numbers: np.ndarray,
    batch: pa.RecordBatch,
    id_name: str | None,
    id_type: pa.DataType | None,
) -> pa.Table:
    positions = [r[0] for r in rejects]
    data: dict[str, Any] = {"row": row_numbers[positions]}
    if id_name is not None:
        data["id"] = batch.column(id_name).take(pa.array(positions))
    data["field"] = [r[1] for r in rejects]
    data["rule"] = [r[2] for r in rejects]
    data["reason"] = [r[3] for r in rejects]
    return pa.Table.from_pydict(data, schema=_rejects_schema(id_type))


# ------------------------------------------------------------------ the Spark engine


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


def _spark_rules(spec: FieldSpec) -> Any:
    """A column holding the first rule ``spec``'s value breaks, or null: the local engine's rules."""
    from pyspark.sql import functions as F  # noqa: N812

    value = F.col(spec.name)
    if spec.type == "categorical":
        return F.when(value.isNull(), F.lit(REQUIRED)).when(
            ~value.cast("string").isin(list(spec.codes)), F.lit(f"must be one of {list(spec.codes)}")
        )
    number = F.trim(value.cast("string")).cast("double")
    is_number = F.trim(value.cast("string")).rlike(_NUMBER) & number.isNotNull() & ~F.isnan(number)
    return (
        F.when(value.isNull(), F.lit(REQUIRED))
        .when(~is_number, F.lit(NOT_INTEGER))
        .when(number % 1 != 0, F.lit(NOT_WHOLE))
        .when((number < spec.min) | (number > spec.max), F.lit(f"must be in [{spec.min}, {spec.max}]"))
    )


def _read_spark(spark: SparkSession, files: list[Path], fmt: str) -> SparkFrame:
    paths = [str(p) for p in files]
    if fmt == "csv":
        # all columns as text, validated below like the local engine does
        return spark.read.option("header", True).option("inferSchema", False).csv(paths)
    return spark.read.parquet(*paths)


def score_spark(
    spark: SparkSession, model_dir: Path, model: ScoringModel, columns: DecisionColumns, options: BatchOptions
) -> tuple[int, int]:
    """Validate in Spark, score with ``mlflow.pyfunc.spark_udf``, apply the policy in a pandas UDF.

    ``model_dir`` is the registered version's folder whose digest was checked:
    Spark scores exactly those bytes. Returns (rows read, rows rejected).
    """
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    files, fmt = input_files(options.input)
    frame = _read_spark(spark, files, fmt)
    schema = model.schema
    missing = [spec.name for spec in schema.inputs if spec.name not in frame.columns]
    if missing:
        raise DataValidationError(f"{options.input}: missing column(s) the model needs: {', '.join(missing)}")
    id_name = options.id_column if options.id_column in frame.columns else None
    rules = {spec.name: _spark_rules(spec) for spec in schema.inputs}
    frame = frame.select(
        *([F.col(id_name)] if id_name else []),
        *[F.col(spec.name) for spec in schema.inputs],
        F.concat_ws("; ", *[F.when(r.isNotNull(), F.concat(F.lit(f"{n}: "), r)) for n, r in rules.items()]).alias(
            "_reason"
        ),
        F.coalesce(*[F.when(r.isNotNull(), F.lit(n)) for n, r in rules.items()]).alias("_field"),
        F.coalesce(*rules.values()).alias("_rule"),
    )
    rejects = frame.where(F.col("_reason") != "").select(
        *([F.col(id_name).alias("id")] if id_name else []),
        F.col("_field").alias("field"),
        F.col("_rule").alias("rule"),
        F.col("_reason").alias("reason"),
    )
    rejects.write.mode("overwrite").parquet(str(rejects_path(options.output)))
    valid = frame.where(F.col("_reason") == "").select(
        *([F.col(id_name)] if id_name else []),
        *[
            F.col(s.name).cast("string") if s.type == "categorical" else F.col(s.name).cast("double").cast("long")
            for s in schema.inputs
        ],
    )
    parallelism = spark.sparkContext.defaultParallelism
    if valid.rdd.getNumPartitions() < parallelism:  # one large Parquet row group is one partition
        valid = valid.repartition(parallelism)
    predict = mlflow.pyfunc.spark_udf(spark, str(model_dir), result_type="double", env_manager="local")
    scored = valid.select(
        *([F.col(id_name)] if id_name else []), predict(*[F.col(s.name) for s in schema.inputs]).alias("probability")
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
    n_rejected = spark.read.parquet(str(rejects_path(options.output))).count()
    n_scored = spark.read.parquet(str(options.output)).count()
    return n_scored + n_rejected, n_rejected


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


# ------------------------------------------------------------------ the step


def batch_score(
    config: ProjectConfig, settings: Settings, options: BatchOptions, *, spark: SparkSession | None = None
) -> BatchSummary:
    """Resolve and verify the version, score the input with the chosen engine, log the run."""
    reg = config.model.registry
    client = registry.connect(settings, config.root)
    version = registry.resolve(client, reg, options.model)
    log.info(
        "scoring %s with %s version %s (engine %s)", options.input, reg.model_name, version.version, options.engine
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="batch-model-") as tmp:
        model_dir = registry.fetch_verified(client, version, Path(tmp), signing_key=registry.signing_key(settings))
        model = ScoringModel.load(registry.scoring_dir(model_dir), threads=2)
        columns = DecisionColumns(DecisionEngine(model, config.model), config.model)
        if options.engine == "local":
            metadata = {
                "model_name": reg.model_name,
                "model_version": str(version.version),
                "decision_policy_version": config.model.decision.policy_version,
                "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            rows, rejected = score_local(model, columns, options, metadata=metadata)
        else:
            if options.reasons:
                log.info("reason codes are not computed on Spark; use the local engine for them")
            own = spark is None
            session = spark or spark_session(options.spark_master, options.spark_conf)
            try:
                rows, rejected = score_spark(session, model_dir, model, columns, options)
            finally:
                if own:
                    session.stop()
    summary = BatchSummary(
        engine=options.engine,
        model_name=reg.model_name,
        model_version=str(version.version),
        rows_read=rows,
        rows_scored=rows - rejected,
        rows_rejected=rejected,
        seconds=time.perf_counter() - started,
        output=options.output,
        rejects=rejects_path(options.output),
    )
    log_summary(client, config, summary, options)
    return summary


def log_summary(client: MlflowClient, config: ProjectConfig, summary: BatchSummary, options: BatchOptions) -> None:
    """One tracking run per batch: which version scored what, how many rows, how fast."""
    experiment_id = registry.ensure_experiment(client, config.model.registry.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"batch_score v{summary.model_version}"):
        registry.log_job_params(
            {
                "input": str(options.input),
                "output": str(options.output),
                "engine": options.engine,
                "model": options.model,
                "model_version": summary.model_version,
                "reasons": options.reasons and options.engine == "local",
            }
        )
        mlflow.log_metrics(
            {
                "rows_read": summary.rows_read,
                "rows_scored": summary.rows_scored,
                "rows_rejected": summary.rows_rejected,
                "seconds": summary.seconds,
                "rows_per_second": summary.rows_per_second,
            }
        )
    log.info(
        "scored %d rows (%d rejected) with version %s in %.1fs (%.0f rows/s): %s",
        summary.rows_scored,
        summary.rows_rejected,
        summary.model_version,
        summary.seconds,
        summary.rows_per_second,
        summary.output,
    )


def _bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes"}:
        return True
    if text.lower() in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet file, or a folder of them")
    parser.add_argument("--output", type=Path, required=True, help="Parquet file (local) or folder (spark)")
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--model", default="production", help="an alias (production) or a version number")
    parser.add_argument("--reasons", type=_bool, default=True, help="reason codes per row (local engine)")
    parser.add_argument("--id-column", default="applicant_id", help="carried through to the output if present")
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--spark-conf", type=_conf, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    settings = Settings()
    options = BatchOptions(
        input=args.input,
        output=args.output,
        engine=args.engine,
        model=args.model,
        reasons=args.reasons,
        id_column=args.id_column,
        chunk_rows=args.chunk_rows,
        spark_master=args.spark_master,
        spark_conf=dict(args.spark_conf),
        progress=not args.no_progress,
    )
    return run_job(lambda: batch_score(load_project_config(args.config_dir or settings.config_dir), settings, options))


if __name__ == "__main__":
    raise SystemExit(main())
