"""How the Spark engine splits a Parquet input among its tasks, from the footers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_risk.schema import DataValidationError, FeatureSchema
from pipelines.batch.plan import parquet_columns, parquet_tasks
from pipelines.batch.reader import with_id_type


def parquet(path: Path, groups: list[int], **columns: pa.Array) -> Path:
    """A file with row groups of the given sizes (an empty group included if asked)."""
    total = sum(groups)
    table = (
        pa.table({"row": pa.array(range(total), pa.int64()), **columns})
        if total
        else pa.table({"row": pa.array([], pa.int64())})
    )
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for size in groups:
            writer.write_table(table.slice(start, size))
            start += size
    return path


def test_every_row_group_is_read_once_in_order_numbered_as_the_local_engine_counts(tmp_path: Path) -> None:
    files = [
        parquet(tmp_path / "a.parquet", [700]),
        parquet(tmp_path / "b.parquet", [1000, 0, 1000, 1000]),
        parquet(tmp_path / "c.parquet", []),
        parquet(tmp_path / "d.parquet", [1000, 500]),
    ]
    footers = [pq.read_metadata(f) for f in files]
    tasks = parquet_tasks(files, footers, parallelism=2)
    pieces = [piece for task in tasks for piece in task]
    # every non-empty row group once, in file and row order, with the number of its first row
    assert [(Path(p.path).name, p.row_group, p.first_row) for p in pieces] == [
        ("a.parquet", 0, 1),
        ("b.parquet", 0, 701),
        ("b.parquet", 2, 1701),
        ("b.parquet", 3, 2701),
        ("d.parquet", 0, 3701),
        ("d.parquet", 1, 4701),
    ]
    assert all(Path(p.path).is_absolute() for p in pieces)
    # two tasks of consecutive row groups, about as many rows each
    assert [
        sum(footers[files.index(Path(p.path))].row_group(p.row_group).num_rows for p in task) for task in tasks
    ] == [
        2700,
        2500,
    ]
    # one large row group is one task whatever the cores; an input without rows, one empty task
    assert len(parquet_tasks(files[:1], footers[:1], parallelism=8)) == 1
    assert parquet_tasks(files[2:3], footers[2:3], parallelism=2) == [[]]


def test_the_id_is_typed_by_the_first_file_and_a_file_without_a_needed_column_is_named(tmp_path: Path) -> None:
    age = {"name": "age", "type": "integer", "min": 18, "max": 99, "label": "Age", "description": "Age in years"}
    schema = FeatureSchema.model_validate(
        {
            "version": 1,
            "target": {"name": "y", "event": "1", "non_event": "0"},
            "fields": [{**age, "reason_code": "AGE"}],
        }
    )
    first = parquet(tmp_path / "a.parquet", [2], age=pa.array([30, 40]), applicant_id=pa.array([1, 2], pa.int32()))
    second = parquet(tmp_path / "b.parquet", [1], age=pa.array([50]), applicant_id=pa.array([3], pa.int64()))
    files = [first, second]
    footers = [pq.read_metadata(f) for f in files]
    assert parquet_columns(schema, "applicant_id", files, footers) == ("applicant_id", pa.int32())
    assert parquet_columns(schema, "loan_id", files, footers) == (None, None)
    third = parquet(tmp_path / "c.parquet", [1], age=pa.array([60]))
    with pytest.raises(DataValidationError, match=r"c\.parquet: missing column\(s\) the model needs: applicant_id"):
        parquet_columns(schema, "applicant_id", [first, third], [footers[0], pq.read_metadata(third)])


def test_a_later_files_ids_are_written_in_the_first_files_type_or_the_file_is_named() -> None:
    batch = pa.record_batch({"applicant_id": pa.array([3, 4], pa.int64()), "age": pa.array([50, 60])})
    typed = with_id_type(batch, "applicant_id", pa.int32(), Path("b.parquet"))
    assert typed.schema.field("applicant_id").type == pa.int32() and typed.column(0).to_pylist() == [3, 4]
    named = pa.record_batch({"applicant_id": pa.array(["x"]), "age": pa.array([50])})
    with pytest.raises(DataValidationError, match=r"b\.parquet: id column 'applicant_id' cannot be written as int32"):
        with_id_type(named, "applicant_id", pa.int32(), Path("b.parquet"))
