"""What a Spark executor's Python worker runs: the model loaded once from its verified copy, each Arrow batch
validated and scored by the local engine's code.

This module imports neither MLflow nor pyspark's SQL layer, so a worker that
unpickles :func:`score_batches` starts in the time it takes to import numpy,
pyarrow and XGBoost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from credit_risk.config import ModelConfig
from credit_risk.decision import DecisionEngine
from credit_risk.digest import RegistryError, directory_digest, scoring_dir
from credit_risk.scoring import ScoringModel
from pipelines.batch.local import output_schema, rejects_table, scored_table
from pipelines.batch.model import DecisionColumns
from pipelines.batch.validation import ChunkEncoder

REJECT_COLUMNS = ("field", "rule", "reason")


class ExecutorJob:
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


def _executor_model(job: ExecutorJob) -> tuple[ScoringModel, DecisionColumns, ChunkEncoder]:
    """The model, loaded once per executor process from its verified local copy."""
    loaded = _LOADED.get(job.key)
    if loaded is None:
        import numba
        from pyspark import SparkFiles

        numba.set_num_threads(1)  # Spark runs one task per core: no threads within a task
        local = Path(SparkFiles.get(job.shipped)) / job.relative
        actual = directory_digest(local)
        if actual != job.digest:
            raise RegistryError(
                f"executor's model copy {local}: digest {actual[:12]}... is not the verified {job.digest[:12]}..."
            )
        model = ScoringModel.load(scoring_dir(local), threads=1)
        columns = DecisionColumns(DecisionEngine(model, job.config), job.config, reasons=job.reasons)
        loaded = _LOADED[job.key] = (model, columns, ChunkEncoder(model))
    return loaded


def score_batches(job: ExecutorJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: each batch validated, encoded and scored by the local engine's code."""
    model, columns, encoder = _executor_model(job)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        id_type = batch.schema.field(job.id_name).type if job.id_name else None
        schema = output_schema(job.id_name, id_type, job.reasons)
        union = pa.schema(
            [f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema]
            + [pa.field(name, pa.string()) for name in REJECT_COLUMNS]
        )
        rows = np.asarray(batch.column("_row"), dtype=np.int64)
        chunk = encoder.encode(batch)
        if len(chunk.matrix):
            table = scored_table(model, columns, chunk, rows, batch, job.id_name, schema)
            for name in ("risk_band", "decision"):
                table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.string()))
            for name in REJECT_COLUMNS:
                table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            yield from table.cast(union).to_batches()
        if chunk.rejects:
            bad = rejects_table(chunk.rejects, rows, batch, job.id_name, id_type)
            data = {name: pa.nulls(bad.num_rows, union.field(name).type) for name in union.names}
            data["row"] = bad["row"]
            if job.id_name is not None:
                data[job.id_name] = bad["id"]
            data.update({name: bad[name] for name in REJECT_COLUMNS})
            yield from pa.Table.from_pydict(data, schema=union).to_batches()
