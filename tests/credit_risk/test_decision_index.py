"""The decision index over real Parquet log files: lookups, pages, increments, retention."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.lookup_bench import write_synthetic_log
from credit_risk.audit.index import DecisionIndex, read_rows
from credit_risk.config import load_project_config

pytestmark = pytest.mark.code

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, list[str]]:
    features = load_project_config().features
    ids = write_synthetic_log(
        tmp_path / "predictions", features, rows=3000, days=10, rows_per_file=250, applicants=40, end=END
    )
    return tmp_path / "predictions", ids


def test_every_logged_request_id_is_found_with_its_row(log: tuple[Path, list[str]], tmp_path: Path) -> None:
    log_dir, ids = log
    index = DecisionIndex(log_dir, tmp_path / "index.sqlite")
    index.refresh()
    assert index.count() == len(ids)
    sample = ids[::97]
    found = [index.find(request_id) for request_id in sample]
    assert [row["request_id"] if row else None for row in found] == sample
    location = index.locate(sample[0])
    assert location is not None and read_rows([location])[0]["request_id"] == sample[0]
    assert pq.read_table(location.path).slice(location.row, 1).to_pylist()[0]["request_id"] == sample[0]


def test_an_applicants_decisions_come_newest_first_in_pages(log: tuple[Path, list[str]], tmp_path: Path) -> None:
    log_dir, _ = log
    index = DecisionIndex(log_dir, tmp_path / "index.sqlite")
    everything = pq.read_table(log_dir).to_pylist()
    applicant = everything[0]["applicant_id"]
    expected = sorted(
        (r for r in everything if r["applicant_id"] == applicant),
        key=lambda r: (r["scored_at"], r["request_id"]),
        reverse=True,
    )
    start, end = END - timedelta(days=30), END + timedelta(days=1)
    first, total = index.by_applicant(applicant, start=start, end=end, limit=5, offset=0)
    second, _ = index.by_applicant(applicant, start=start, end=end, limit=5, offset=5)
    assert total == len(expected)
    assert [r["request_id"] for r in first + second] == [r["request_id"] for r in expected[:10]]
    window_end = expected[3]["scored_at"]
    windowed, count = index.by_applicant(applicant, start=start, end=window_end, limit=100, offset=0)
    assert count == len(expected) - 4
    assert all(r["scored_at"] < window_end for r in windowed)


def test_a_refresh_reads_only_new_files_and_forgets_deleted_ones(log: tuple[Path, list[str]], tmp_path: Path) -> None:
    log_dir, ids = log
    index = DecisionIndex(log_dir, tmp_path / "index.sqlite", refresh_seconds=0)
    files = index.refresh()
    assert files == len(list(log_dir.rglob("*.parquet")))
    assert index.refresh() == 0
    more = write_synthetic_log(
        tmp_path / "more", load_project_config().features, rows=100, days=1, rows_per_file=100, end=END, seed=7
    )
    new_file = next((tmp_path / "more").rglob("*.parquet"))
    shutil.copy(new_file, log_dir / new_file.parent.name / "part-late-000001.parquet")
    assert index.find(more[0]) is not None, "a miss re-reads the log's new files"
    assert index.count() == len(ids) + 100
    oldest = sorted(log_dir.iterdir())[0]
    gone = {r["request_id"] for r in pq.read_table(oldest).to_pylist()}
    shutil.rmtree(oldest)  # retention deletes a whole date partition
    index.refresh()
    assert index.count() == len(ids) + 100 - len(gone)
    assert index.find(next(iter(gone))) is None
    assert not (index.copies / oldest.name).exists(), "the lookup copies go with the partition"


def test_two_indexes_on_one_file_agree(log: tuple[Path, list[str]], tmp_path: Path) -> None:
    log_dir, ids = log
    first = DecisionIndex(log_dir, tmp_path / "index.sqlite")
    second = DecisionIndex(log_dir, tmp_path / "index.sqlite")
    first.refresh()
    assert second.refresh() == 0
    assert second.count() == len(ids)
