"""Reading the input: CSV or Parquet, a file or a folder, streamed in record batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credit_risk.schema import DataValidationError, FeatureSchema

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


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
        self._missing = sorted({"", *schema.missing_values})
        self._categoricals = [s.name for s in schema.inputs if s.type == "categorical"]
        self._id_column = id_column
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
            column_types=self._text, include_columns=columns, null_values=self._missing, strings_can_be_null=True
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
            has_ids = self._id_column in columns and self._id_column in self.schema.names
            ids = (self._id_column, self.schema.field(self._id_column).type) if has_ids else None
            yield from parquet_batches(path, columns, chunk_rows, self._categoricals, ids=ids)
            return
        # CSV blocks are sized in bytes: about 200 bytes per applicant row
        read = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 200))
        with pacsv.open_csv(path, read_options=read, convert_options=self._csv_convert(columns)) as reader:
            yield from reader


def parquet_batches(
    path: Path,
    columns: list[str],
    chunk_rows: int,
    categoricals: list[str],
    row_groups: list[int] | None = None,
    *,
    ids: tuple[str, pa.DataType] | None = None,
) -> Iterator[pa.RecordBatch]:
    """A Parquet file's ``columns`` (of ``row_groups``, or all) in batches of ``chunk_rows``: how both
    engines read Parquet. Categoricals are read as dictionaries, so validation and encoding look at the
    few distinct values; batch by batch within row groups (no pre-buffering of whole row groups).
    ``ids``: the id column and the type it is written in (:func:`with_id_type`)."""
    try:
        parquet = pq.ParquetFile(path, read_dictionary=categoricals, pre_buffer=False, buffer_size=1 << 20)
        batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=row_groups, columns=columns)
        for batch in batches:
            yield batch if ids is None else with_id_type(batch, *ids, path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataValidationError(f"{path}: cannot read this parquet file: {exc}") from exc


def parquet_footers(files: list[Path]) -> list[pq.FileMetaData]:
    """Each Parquet file's footer (row groups, row counts, schema), a file that cannot be read named."""
    footers = []
    for path in files:
        try:
            footers.append(pq.read_metadata(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataValidationError(f"{path}: cannot read this parquet file: {exc}") from exc
    return footers


def with_id_type(batch: pa.RecordBatch, id_name: str, id_type: pa.DataType, path: Path) -> pa.RecordBatch:
    """``batch`` with its id column in ``id_type`` (the first file's: the output is one table), the file
    named if its ids cannot be written in it."""
    column = batch.schema.get_field_index(id_name)
    if batch.schema.field(column).type == id_type:
        return batch
    try:
        return batch.set_column(column, id_name, batch.column(column).cast(id_type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataValidationError(
            f"{path}: id column {id_name!r} cannot be written as {id_type}, the first file's type: {exc}"
        ) from exc
