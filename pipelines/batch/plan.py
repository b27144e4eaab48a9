"""How the Spark engine splits a Parquet input among its tasks, from the files' footers alone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.schema import DataValidationError, FeatureSchema


@dataclass(frozen=True)
class Piece:
    """One Parquet row group to read, and the number in the input of its first row (1-based)."""

    path: str
    row_group: int
    first_row: int


def parquet_columns(
    schema: FeatureSchema, id_column: str, files: list[Path], footers: list[pq.FileMetaData]
) -> tuple[str | None, pa.DataType | None]:
    """The id column and its type, as the local engine takes them: from the first file (the other files'
    ids are written in that type); every file must hold the model's columns, and the id if the first does."""
    first = footers[0].schema.to_arrow_schema()
    id_name = id_column if id_column in first.names else None
    needed = [spec.name for spec in schema.inputs] + ([id_column] if id_name else [])
    for path, footer in zip(files, footers, strict=True):
        names = set(footer.schema.names)
        missing = [name for name in needed if name not in names]
        if missing:
            raise DataValidationError(f"{path}: missing column(s) the model needs: {', '.join(missing)}")
    return id_name, first.field(id_column).type if id_name else None


def parquet_tasks(files: list[Path], footers: list[pq.FileMetaData], parallelism: int) -> list[list[Piece]]:
    """The input's row groups, in file and row order, in at most ``parallelism`` tasks of consecutive
    row groups and about as many rows each (a row group goes to the task its middle row falls in, and
    is never split, as Spark's own reader never splits one); each piece with the number of its first
    row in the input as the local engine counts. One task without pieces for an input without rows."""
    pieces, first = [], 1
    for path, footer in zip(files, footers, strict=True):
        for group in range(footer.num_row_groups):
            rows = footer.row_group(group).num_rows
            if rows:
                pieces.append((Piece(os.path.abspath(path), group, first), rows))
            first += rows
    parallelism = max(1, parallelism)
    share = max(1, -(-(first - 1) // parallelism))
    tasks: dict[int, list[Piece]] = {}
    for piece, rows in pieces:
        tasks.setdefault(min(parallelism - 1, (piece.first_row - 1 + rows // 2) // share), []).append(piece)
    return [tasks[task] for task in sorted(tasks)] or [[]]
