"""What a Spark executor's Python worker runs: the model loaded once from its verified copy, each Arrow batch
validated and scored by the local engine's code.

This module imports neither MLflow nor pyspark's SQL layer, so a worker that
unpickles :func:`score_batches` starts in the time it takes to import numpy,
pyarrow and XGBoost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from credit_risk.config import ModelConfig
from credit_risk.decision import DecisionEngine
from credit_risk.digest import RegistryError, directory_digest, scoring_dir
from credit_risk.scoring import ScoringModel
from pipelines.batch.local import output_schema, rejects_table, scored_table
from pipelines.batch.model import DecisionColumns
from pipelines.batch.validation import ChunkEncoder


class ExecutorJob:
    """What an executor needs to score: where its copy of the model is, its digest, the policy."""

    def __init__(
        self,
        *,
        shipped: str,
        relative: str,
        digest: str,
        config: ModelConfig,
        reasons: bool,
        id_name: str | None,
        threads: int = 1,
    ) -> None:
        self.shipped, self.relative, self.digest = shipped, relative, digest
        self.config, self.reasons, self.id_name = config, reasons, id_name
        self.threads = threads

    @property
    def key(self) -> tuple[str, str, str, bool, int]:
        return self.shipped, self.relative, self.digest, self.reasons, self.threads


_LOADED: dict[tuple[str, str, str, bool, int], tuple[ScoringModel, DecisionColumns, ChunkEncoder]] = {}


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
        columns = DecisionColumns(DecisionEngine(model, job.config), job.config, reasons=job.reasons)
        loaded = _LOADED[job.key] = (model, columns, ChunkEncoder(model))
    return loaded


def score_batches(job: ExecutorJob, rejected: Any, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: each batch validated, encoded and scored by the local engine's code; the valid rows
    come out scored, the invalid ones are counted in the accumulator ``rejected``."""
    import numba

    model, columns, encoder = _executor_model(job)
    numba.set_num_threads(job.threads)  # TreeSHAP's threads: the cores this task has to itself
    schema = plain = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if schema is None:
            id_type = batch.schema.field(job.id_name).type if job.id_name else None
            schema = output_schema(job.id_name, id_type, job.reasons)
            # Spark takes plain strings for the band and the decision
            plain = pa.schema([f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema])
        chunk = encoder.encode(batch)
        if chunk.rejects:
            rejected.add(len(chunk.rejects))
        if len(chunk.matrix):
            rows = np.asarray(batch.column("_row"), dtype=np.int64)
            yield from scored_table(model, columns, chunk, rows, batch, job.id_name, schema).cast(plain).to_batches()


def reject_batches(job: ExecutorJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: each batch's invalid rows, by the local engine's rule table (row, id, field, rule, reason)."""
    _, _, encoder = _executor_model(job)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        chunk = encoder.encode(batch)
        if chunk.rejects:
            rows = np.asarray(batch.column("_row"), dtype=np.int64)
            id_type = batch.schema.field(job.id_name).type if job.id_name else None
            yield from rejects_table(chunk.rejects, rows, batch, job.id_name, id_type).to_batches()
