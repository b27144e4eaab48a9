"""What a Spark executor's Python worker runs: the model loaded once from its verified copy, each Arrow batch
validated and scored by the local engine's code, the rows written by the task itself.

A Parquet input is read by the tasks, row group by row group, as the local
engine reads it (:func:`score_pieces`); a CSV input is read by Spark
(:func:`score_partition`). This module imports neither MLflow nor pyspark's
SQL layer, so a worker that unpickles either starts in the time it takes to
import numpy, pyarrow and XGBoost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.config import ModelConfig
from credit_risk.digest import RegistryError, directory_digest, scoring_dir
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.commit import REJECTS_FILE, SCORED_FILE, Written, attempt_folder
from pipelines.batch.local import output_schema, rejects_schema, rejects_table, scored_table
from pipelines.batch.model import DecisionColumns
from pipelines.batch.plan import Piece
from pipelines.batch.reader import parquet_batches
from pipelines.batch.validation import ChunkEncoder


class ExecutorJob:
    """What an executor needs to score: where its copy of the model is, its digest, the policy, whether to
    give reasons and what would change each decline or referral (recourse), the id column and the type it
    is written in, where to write (the job's staging folder) and the output's metadata."""

    def __init__(
        self,
        *,
        shipped: str,
        relative: str,
        digest: str,
        config: ModelConfig,
        reasons: bool,
        recourse: bool = False,
        id_name: str | None,
        id_type: pa.DataType | None,
        staging: str,
        metadata: dict[str, str],
        threads: int = 1,
        chunk_rows: int = 65_536,
    ) -> None:
        self.shipped, self.relative, self.digest = shipped, relative, digest
        self.config, self.reasons, self.id_name, self.id_type = config, reasons, id_name, id_type
        self.recourse = recourse
        self.staging, self.metadata = staging, metadata
        self.threads, self.chunk_rows = threads, chunk_rows

    @property
    def key(self) -> tuple[str, str, str, bool, bool, int]:
        return self.shipped, self.relative, self.digest, self.reasons, self.recourse, self.threads


_LOADED: dict[tuple[str, str, str, bool, bool, int], tuple[ScoringModel, DecisionColumns, ChunkEncoder]] = {}


def _executor_model(job: ExecutorJob) -> tuple[ScoringModel, DecisionColumns, ChunkEncoder]:
    """The model, loaded once per executor process from its verified local copy."""
    loaded = _LOADED.get(job.key)
    if loaded is None:
        from pyspark import SparkFiles

        local = Path(SparkFiles.get(job.shipped)) / job.relative
        actual = directory_digest(local)
        if actual != job.digest:
            raise RegistryError(
                f"executor's model copy {local}: digest {actual[:12]}... is not the verified {job.digest[:12]}..."
            )
        model = ScoringModel.load(scoring_dir(local), threads=job.threads)
        paused = job.metadata.get("automation") == "paused"
        columns = DecisionColumns(model, job.config, reasons=job.reasons, recourse=job.recourse, paused=paused)
        loaded = _LOADED[job.key] = (model, columns, ChunkEncoder(model))
    return loaded


def score_pieces(
    job: ExecutorJob, batches: Iterator[pa.RecordBatch], *, tasks: list[list[Piece]]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over the task numbers (``spark.range``): each task reads its Parquet row groups itself,
    as the local engine reads them (:func:`~pipelines.batch.reader.parquet_batches`), numbers their rows
    from the pieces' first rows, and scores and writes them (:func:`_score_and_write`)."""
    pieces = [piece for batch in batches for task in batch.column(0).to_pylist() for piece in tasks[task]]
    yield from _score_and_write(job, (numbered for piece in pieces for numbered in _read_piece(job, piece)))


def _read_piece(job: ExecutorJob, piece: Piece) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """One row group's batches (the job's id type), each with its rows' numbers in the input."""
    schema = _executor_model(job)[0].schema
    columns = ([job.id_name] if job.id_name else []) + schema.input_names
    categoricals = [spec.name for spec in schema.inputs if spec.type == "categorical"]
    ids = (job.id_name, job.id_type) if job.id_name and job.id_type else None
    first = piece.first_row
    for batch in parquet_batches(Path(piece.path), columns, job.chunk_rows, categoricals, [piece.row_group], ids=ids):
        yield batch, np.arange(first, first + batch.num_rows, dtype=np.int64)
        first += batch.num_rows


def score_partition(job: ExecutorJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over rows Spark read and numbered (``_row``): scored and written (:func:`_score_and_write`)."""
    yield from _score_and_write(
        job, ((batch, np.asarray(batch.column("_row"), dtype=np.int64)) for batch in batches if batch.num_rows)
    )


def _score_and_write(
    job: ExecutorJob, numbered: Iterator[tuple[pa.RecordBatch, np.ndarray]]
) -> Iterator[pa.RecordBatch]:
    """Each batch validated, encoded and scored by the local engine's code, the valid rows and the invalid
    ones written by this task attempt into its own staging folder with pyarrow, in the local engine's
    schemas; yields one row, what it wrote (:class:`~pipelines.batch.commit.Written`), or the error of an
    input it could not read."""
    import numba
    from pyspark import TaskContext

    context = TaskContext.get()
    partition, attempt = context.partitionId(), context.taskAttemptId()
    _, columns, encoder = _executor_model(job)
    # TreeSHAP's threads: the cores this task has to itself, at most the machine's (local[N] can ask more)
    numba.set_num_threads(min(job.threads, numba.config.NUMBA_NUM_THREADS))
    folder = attempt_folder(Path(job.staging), partition, attempt)
    rows = rejected = 0
    try:
        with _PartWriters(folder, job) as out:
            for batch, numbers in numbered:
                chunk = encoder.encode(batch)
                if chunk.rejects:
                    out.rejects.write_table(rejects_table(chunk.rejects, numbers, batch, job.id_name, job.id_type))
                if len(chunk.matrix):
                    out.scored.write_table(scored_table(columns, chunk, numbers, batch, job.id_name, out.scored_schema))
                rows += batch.num_rows
                rejected += len(chunk.rejects)
    except DataValidationError as exc:  # the same on every attempt: answered, not retried
        yield Written(partition, attempt, rows, rejected, error=str(exc)).record()
        return
    yield Written(partition, attempt, rows, rejected).record()


class _PartWriters:
    """One attempt's scored and rejects files, each opened at its first row (a partition without bad rows
    writes no rejects file), in the local engine's schemas with the job's id type."""

    def __init__(self, folder: Path, job: ExecutorJob) -> None:
        self.folder = folder
        self.scored_schema = output_schema(job.id_name, job.id_type, job.reasons, job.metadata, recourse=job.recourse)
        self.rejects_schema = rejects_schema(job.id_type, job.metadata)
        self._writers: dict[str, pq.ParquetWriter] = {}

    def __enter__(self) -> _PartWriters:
        return self

    def __exit__(self, *_exc: object) -> None:
        for writer in self._writers.values():
            writer.close()

    def _writer(self, name: str, schema: pa.Schema) -> pq.ParquetWriter:
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self.folder / name, schema)
        return self._writers[name]

    @property
    def scored(self) -> pq.ParquetWriter:
        return self._writer(SCORED_FILE, self.scored_schema)

    @property
    def rejects(self) -> pq.ParquetWriter:
        return self._writer(REJECTS_FILE, self.rejects_schema)
