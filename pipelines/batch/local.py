"""The local engine: the input streamed chunk by chunk through validation, the model and the policy."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import BatchOptions, rejects_path
from pipelines.batch.output import marked, refuse_foreign_output
from pipelines.batch.reader import InputReader
from pipelines.batch.validation import ChunkEncoder, EncodedChunk


def rejects_schema(id_type: pa.DataType | None, meta: dict[str, str] | None = None) -> pa.Schema:
    fields = [pa.field("row", pa.int64())]
    if id_type is not None:
        fields.append(pa.field("id", id_type))
    return pa.schema([*fields, ("field", pa.string()), ("rule", pa.string()), ("reason", pa.string())], metadata=meta)


def output_schema(
    id_name: str | None,
    id_type: pa.DataType | None,
    reasons: bool,
    meta: dict[str, str] | None = None,
    *,
    recourse: bool = False,
) -> pa.Schema:
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
    if recourse:  # JSON as POST /v1/predict?recourse=true answers it: {"recourse": [...], "recourse_note": ...}
        fields.append(pa.field("recourse", pa.string()))
    return pa.schema(fields, metadata=meta)


def scored_table(
    columns: DecisionColumns,
    chunk: EncodedChunk,
    row_numbers: np.ndarray,
    batch: pa.RecordBatch,
    id_name: str | None,
    schema: pa.Schema,
) -> pa.Table:
    """One chunk's valid rows scored: row number, id, probability, score, band, decision, reasons, and
    what would change the decision when the columns search for it.

    Both engines call this, so they score alike.
    """
    picked = None if chunk.valid is None else pa.array(chunk.valid)
    data: dict[str, Any] = {"row": row_numbers if chunk.valid is None else row_numbers[chunk.valid]}
    if id_name is not None:
        ids = batch.column(id_name)
        data[id_name] = ids if picked is None else ids.take(picked)
    # the recourse search takes each row's values as the rule table read them (a CSV's text parsed)
    records = chunk.records() if columns.recourse is not None else None
    data.update(columns.decide(chunk.matrix, records))
    return pa.Table.from_pydict(data, schema=schema)


def rejects_table(
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
    return pa.Table.from_pydict(data, schema=rejects_schema(id_type))


def score_local(
    model: ScoringModel, columns: DecisionColumns, options: BatchOptions, *, metadata: dict[str, str]
) -> tuple[int, int]:
    """Stream the input through validation, encoding, the model and the policy into Parquet.

    Returns (rows read, rows rejected). Both files carry the marker of an output of this job
    (:mod:`pipelines.batch.output`); anything else at their paths is refused, not overwritten.
    """
    refuse_foreign_output(options.output, "local")
    reader = InputReader(options.input, model.schema, id_column=options.id_column)
    names = set(reader.schema.names)
    missing = [spec.name for spec in model.schema.inputs if spec.name not in names]
    if missing:
        raise DataValidationError(f"{options.input}: missing column(s) the model needs: {', '.join(missing)}")
    id_name = options.id_column if options.id_column in names else None
    id_type = reader.schema.field(id_name).type if id_name else None
    read = [spec.name for spec in model.schema.inputs] + ([id_name] if id_name else [])
    encoder = ChunkEncoder(model)
    out_schema = output_schema(id_name, id_type, options.reasons, marked(metadata), recourse=options.recourse)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    rows = rejected = 0
    progress = Progress(enabled=options.progress)
    with (
        pq.ParquetWriter(options.output, out_schema) as writer,
        pq.ParquetWriter(rejects_path(options.output), rejects_schema(id_type, marked(metadata))) as rejects,
    ):
        for batch in reader.batches(read, options.chunk_rows):
            chunk = encoder.encode(batch)
            row_numbers = np.arange(rows + 1, rows + batch.num_rows + 1, dtype=np.int64)
            if chunk.rejects:
                rejects.write_table(rejects_table(chunk.rejects, row_numbers, batch, id_name, id_type))
            if len(chunk.matrix):
                writer.write_table(scored_table(columns, chunk, row_numbers, batch, id_name, out_schema))
            rows += batch.num_rows
            rejected += len(chunk.rejects)
            progress.update(rows, rejected)
    progress.update(rows, rejected, final=True)
    return rows, rejected


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
