"""The Spark engine's commit: the counted task attempts' files become the output, nothing else does."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_risk.schema import DataValidationError
from pipelines.batch.commit import REJECTS_FILE, SCORED_FILE, StagedOutput, Written, attempt_folder
from pipelines.batch.options import rejects_path
from pipelines.batch.output import MARKER_FILE, marked, write_marker

SCORED = pa.schema([("row", pa.int64()), ("probability", pa.float64())])
REJECTS = pa.schema([("row", pa.int64()), ("field", pa.string())])


def write(folder: Path, name: str, rows: list[int]) -> None:
    schema = SCORED if name == SCORED_FILE else REJECTS
    data = {"row": rows, schema.names[1]: [0.5 if name == SCORED_FILE else "age" for _ in rows]}
    pq.write_table(pa.Table.from_pydict(data, schema=schema), folder / name)


def test_only_the_counted_attempts_become_the_output_and_an_older_output_is_replaced(tmp_path: Path) -> None:
    output = tmp_path / "scores"
    output.mkdir()
    (output / "part-00009.parquet").write_text("an older run's file")
    write_marker(output, "scored", None)  # an earlier output of the job
    staged = StagedOutput(output)
    # partition 0: attempt 0 failed half-way (left a file), attempt 1 is the one Spark counted
    write(attempt_folder(staged.folder, 0, 0), SCORED_FILE, [1, 2])
    first = attempt_folder(staged.folder, 0, 1)
    write(first, SCORED_FILE, [1, 2, 3])
    # partition 1: counted attempt 0 with one bad row; a speculative attempt 1 also wrote, not counted
    second = attempt_folder(staged.folder, 1, 0)
    write(second, SCORED_FILE, [4])
    write(second, REJECTS_FILE, [5])
    write(attempt_folder(staged.folder, 1, 1), SCORED_FILE, [4])

    rows, rejected = staged.commit([Written(1, 0, 2, 1), Written(0, 1, 3, 0)], SCORED, REJECTS)

    assert (rows, rejected) == (5, 1)
    assert sorted(p.name for p in output.iterdir()) == [
        "_SUCCESS",
        MARKER_FILE,
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert pq.read_table(output).column("row").to_pylist() == [1, 2, 3, 4]
    assert pq.read_table(rejects_path(output)).column("row").to_pylist() == [5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores", "scores.rejects.parquet"]  # staging gone


def test_a_job_without_rows_of_a_kind_still_leaves_a_readable_empty_file(tmp_path: Path) -> None:
    output = tmp_path / "scores"
    staged = StagedOutput(output)
    write(attempt_folder(staged.folder, 0, 0), SCORED_FILE, [1])
    assert staged.commit([Written(0, 0, 1, 0)], SCORED, REJECTS) == (1, 0)
    empty = pq.read_table(rejects_path(output))
    assert empty.num_rows == 0 and empty.schema.equals(REJECTS)


def test_a_partition_answered_twice_is_refused_and_an_attempt_cannot_outlive_the_staging_folder(
    tmp_path: Path,
) -> None:
    output = tmp_path / "scores"
    staged = StagedOutput(output)
    with pytest.raises(RuntimeError, match="answered twice"):
        staged.commit([Written(0, 0, 1, 0), Written(0, 1, 1, 0)], SCORED, REJECTS)
    staged.discard()
    assert not output.exists()
    # a late (speculative) attempt does not re-create a discarded staging folder
    with pytest.raises(FileNotFoundError):
        attempt_folder(staged.folder, 0, 2)


class _RejectsCannotMove(StagedOutput):
    """A commit whose move of the rejects folder fails (a full disk, a lost mount), into place or, with
    ``aside``, out of the way: the fault is injected here, the files and the other moves are real."""

    def __init__(self, output: Path, *, aside: bool = False) -> None:
        super().__init__(output)
        self.aside = aside

    def _move(self, source: Path, destination: Path) -> None:
        moving = source if self.aside else destination
        if moving.name.endswith(".rejects.parquet"):
            raise OSError("no space left on device")
        super()._move(source, destination)


def test_a_commit_that_fails_half_way_puts_the_older_output_back_even_when_it_was_a_file(tmp_path: Path) -> None:
    output = tmp_path / "scores.parquet"
    pq.write_table(SCORED.with_metadata(marked({})).empty_table(), output)  # the local engine's earlier output
    earlier = output.read_bytes()
    rejects_path(output).mkdir()
    (rejects_path(output) / "part-00000.parquet").write_bytes(b"its rejects")
    write_marker(rejects_path(output), "rejects", None)
    for aside in (False, True):
        staged = _RejectsCannotMove(output, aside=aside)
        write(attempt_folder(staged.folder, 0, 0), SCORED_FILE, [1])
        with pytest.raises(OSError, match="no space left"):  # the fault itself, not one of the undoing
            staged.commit([Written(0, 0, 1, 0)], SCORED, REJECTS)
        staged.discard()
        assert not staged.stranded
        assert output.read_bytes() == earlier
        assert (rejects_path(output) / "part-00000.parquet").read_bytes() == b"its rejects"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet", "scores.rejects.parquet"]

    # the same commit without the fault replaces both, the file by a folder
    staged = StagedOutput(output)
    write(attempt_folder(staged.folder, 0, 0), SCORED_FILE, [1])
    assert staged.commit([Written(0, 0, 1, 0)], SCORED, REJECTS) == (1, 0)
    assert output.is_dir() and pq.read_table(output).column("row").to_pylist() == [1]
    assert pq.read_table(rejects_path(output)).num_rows == 0


def test_a_commit_moves_nothing_aside_that_is_not_an_earlier_output(tmp_path: Path) -> None:
    """Checked again at the commit: files put at the output while the job ran are left where they are."""
    output = tmp_path / "scores"
    staged = StagedOutput(output)
    write(attempt_folder(staged.folder, 0, 0), SCORED_FILE, [1])
    output.mkdir()
    (output / "someone-else.csv").write_text("a,b\n")
    with pytest.raises(DataValidationError, match=r"scores: a folder that is not empty and not an earlier output"):
        staged.commit([Written(0, 0, 1, 0)], SCORED, REJECTS)
    staged.discard()
    assert [p.name for p in output.iterdir()] == ["someone-else.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]


def test_the_staging_folder_is_absolute_for_the_executors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    staged = StagedOutput(Path("scores"))
    assert staged.folder.is_absolute() and staged.folder.parent == tmp_path
    staged.discard()
