"""Several log directories read as one log (prediction_log.read_directories), each decision counted once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.audit.several import DecisionIndexes
from credit_risk.decision_log.paths import read_dirs
from credit_risk.decision_log.reader import read_log, read_log_counted
from tests.conftest import Store

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("applicant_id", pa.string()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
        ("model_name", pa.string()),
        ("probability", pa.float64()),
    ]
)
DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


def write_part(log_dir: Path, name: str, ids: list[str], *, applicant: str = "app-1") -> None:
    folder = log_dir / f"date={DAY.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = {
        "request_id": ids,
        "applicant_id": [applicant] * len(ids),
        "scored_at": [DAY + timedelta(seconds=int(i.split("-")[1])) for i in ids],
        "model_name": ["credit-risk"] * len(ids),
        "probability": [0.1] * len(ids),
    }
    pq.write_table(pa.table(rows, schema=SCHEMA), folder / f"part-{name}-000000001-000.parquet")


def _read(dirs: list[Path]) -> pa.Table:
    return read_log(dirs, SCHEMA, start=date(2026, 11, 1), end=date(2026, 11, 3), model_name="credit-risk")


def test_two_directories_read_as_one_log(tmp_path: Path) -> None:
    write_part(tmp_path / "a", "a_1", ["r-1", "r-2"])
    write_part(tmp_path / "b", "b_1", ["r-3"])
    assert sorted(_read([tmp_path / "a", tmp_path / "b"])["request_id"].to_pylist()) == ["r-1", "r-2", "r-3"]


def test_a_decision_written_twice_is_read_once_and_counted_as_dropped(tmp_path: Path) -> None:
    write_part(tmp_path / "a", "a_1", ["r-1", "r-2", "r-3"])
    write_part(tmp_path / "a", "old_copy", ["r-1", "r-2"])  # an older release's second file of the same rows
    read = read_log_counted(
        tmp_path / "a", SCHEMA, start=date(2026, 11, 1), end=date(2026, 11, 3), model_name="credit-risk"
    )
    assert sorted(read.table["request_id"].to_pylist()) == ["r-1", "r-2", "r-3"]
    assert read.duplicates_dropped == 2


def test_a_reused_request_id_at_another_time_is_another_decision_and_kept(tmp_path: Path) -> None:
    write_part(tmp_path / "a", "a_1", ["r-1"])
    folder = tmp_path / "a" / f"date={DAY.date().isoformat()}"
    later = pa.table(
        {
            "request_id": ["r-1"],
            "applicant_id": ["app-2"],
            "scored_at": [DAY + timedelta(hours=1)],
            "model_name": ["credit-risk"],
            "probability": [0.2],
        },
        schema=SCHEMA,
    )
    pq.write_table(later, folder / "part-b_1-000000001-000.parquet")
    assert _read([tmp_path / "a"]).num_rows == 2


def test_read_directories_name_every_directory_the_readers_read(store: Store, tmp_path: Path) -> None:
    log = store.config.model.prediction_log.model_copy(update={"read_directories": (tmp_path / "a", Path("rel"))})
    config = store.config.model_copy(update={"model": store.config.model.model_copy(update={"prediction_log": log})})
    assert read_dirs(config, store.settings) == [tmp_path / "a", config.root / "rel"]
    assert read_dirs(store.config, store.settings, tmp_path / "x") == [tmp_path / "x"]


def test_the_audit_lookup_finds_decisions_in_every_directory(tmp_path: Path) -> None:
    write_part(tmp_path / "a", "a_1", ["r-1", "r-2"])
    write_part(tmp_path / "b", "b_1", ["r-3"])
    indexes = DecisionIndexes([tmp_path / "a", tmp_path / "b"], tmp_path / "audit" / "decisions.sqlite")
    try:
        assert all(indexes.find(rid) is not None for rid in ("r-1", "r-2", "r-3"))
        assert indexes.find("r-4") is None
        page, total = indexes.by_applicant(
            "app-1", start=DAY - timedelta(days=1), end=DAY + timedelta(days=1), limit=2, offset=1
        )
        assert total == 3
        assert [r["request_id"] for r in page] == ["r-2", "r-1"], "newest first across both directories"
    finally:
        indexes.close()
