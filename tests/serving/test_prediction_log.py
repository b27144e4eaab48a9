"""The prediction log writer, on real Parquet files (and a real MLflow store for uploads)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, PredictionLogConfig, load_project_config
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import ARTIFACT_DIR
from credit_risk.decision_log.privacy import keyed_hash
from credit_risk.schema import FeatureSchema
from serving.prediction_log import (
    HIGH_WATER,
    PredictionLogClosedError,
    PredictionLogError,
    PredictionLogFullError,
    PredictionLogWriter,
)
from serving.prediction_log.converter import Converter
from serving.prediction_log.wal import _line as wal_line
from serving.prediction_log.wal import record_line

pytestmark = pytest.mark.code

SCHEMA: FeatureSchema = load_project_config().features
KEY = "test-key-not-secret"


def make_records(count: int, *, start: int = 0, version: str = "1", at: datetime | None = None) -> list[dict[str, Any]]:
    """Records as the service builds them, with values that differ per row."""
    base = SCHEMA.example_record()
    records = []
    for i in range(start, start + count):
        record: dict[str, Any] = dict(base)
        for spec in SCHEMA.fields:
            if spec.type == "integer":
                record[spec.name] = spec.min + i % (spec.max - spec.min + 1)
            else:
                record[spec.name] = spec.codes[i % len(spec.codes)]
        record["age_in_years"] = None if i % 3 == 0 else record["age_in_years"]  # protected: optional
        record.update(
            request_id=f"req-{i:07d}",
            batch_id=None if i % 2 else f"batch-{i // 10}",
            scored_at=at or datetime.now(UTC),
            model_name="credit-risk",
            model_version=version,
            probability=(i % 997) / 997,
            score=500 + i % 200,
            risk_band="ABCDEF"[i % 6],
            decision=("approve", "review", "decline")[i % 3],
            decision_policy_version="policy-1",
            reasons=["DUR", "CHK"][: i % 3],
            latency_ms=0.5 + i / 1000,
        )
        records.append(record)
    return records


def read_rows(directory: Path) -> pa.Table:
    return ds.dataset(directory, format="parquet", partitioning="hive").to_table()


@contextmanager
def running_writer(
    directory: Path,
    client_factory: Callable | None = None,
    *,
    hash_key: str | None = KEY,
    out_of_process: bool = False,  # the converter child has its own tests; the service tests run it
    **overrides: Any,
) -> Iterator[PredictionLogWriter]:
    settings = {"flush_every_records": 100, "flush_interval_seconds": 0.2, **overrides}
    writer = PredictionLogWriter(
        PredictionLogConfig(**settings),
        directory=directory,
        schema=SCHEMA,
        client_factory=client_factory,
        hash_key=hash_key,
        out_of_process=out_of_process,
    )
    writer.start()
    try:
        yield writer
    finally:
        writer.close(timeout=30)


def test_n_submitted_records_become_exactly_n_rows_with_their_values(tmp_path: Path) -> None:
    records = make_records(2345)
    with running_writer(tmp_path / "log") as writer:
        for i in range(0, len(records), 50):
            writer.submit(records[i : i + 50])
    table = read_rows(tmp_path / "log").sort_by("request_id")
    assert table.num_rows == len(records)
    rows = table.to_pylist()
    for record, row in zip(records, rows, strict=True):
        for name, value in record.items():
            assert row[name] == value, f"{record['request_id']}: column {name!r}"
        assert row["log_schema_version"] == 1
        assert row["date"] == record["scored_at"].date().isoformat()


def test_columns_are_typed_per_the_feature_schema(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log") as writer:
        writer.submit(make_records(10))
    [path] = (tmp_path / "log").rglob("*.parquet")
    written = pq.read_schema(path)
    assert written.remove_metadata() == log_schema(SCHEMA).remove_metadata()
    assert written.field("duration_in_month").type == pa.int64()
    assert written.field("purpose").type == pa.string()
    assert written.field("scored_at").type == pa.timestamp("us", tz="UTC")
    assert written.field("reasons").type == pa.list_(pa.string())
    assert written.metadata[b"log_schema_version"] == b"1"


def test_records_are_flushed_within_the_interval_without_close(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log", flush_every_records=1000, flush_interval_seconds=0.2) as writer:
        writer.submit(make_records(3))
        deadline = time.monotonic() + 5
        while not list((tmp_path / "log").rglob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_rows(tmp_path / "log").num_rows == 3, "3 records (< flush_every_records) not flushed by time"


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    errors: list[str] = []
    done = threading.Event()

    def read_constantly() -> None:
        while not done.is_set():
            for path in directory.rglob("*.parquet"):
                try:
                    pq.read_table(path)
                except (OSError, pa.ArrowException) as exc:
                    if path.exists():
                        errors.append(f"{path.name}: {exc}")

    with running_writer(directory, flush_every_records=20, flush_interval_seconds=0.05) as writer:
        reader = threading.Thread(target=read_constantly)
        reader.start()
        for i in range(60):
            writer.submit(make_records(20, start=i * 20))
            time.sleep(0.005)
    done.set()
    reader.join()
    assert not errors
    names = [p.name for p in directory.glob("date=*/*") if p.is_file()]
    # part-<writer id>-<wal segment>-<rank>.parquet; the writer id is the host and a random part, no pid
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40]
    pattern = rf"part-{re.escape(host)}-[0-9a-f]{{12}}-\d{{9}}-\d{{3}}\.parquet"
    assert names and all(re.fullmatch(pattern, n) for n in names), names


def test_a_leftover_temporary_file_is_ignored_by_readers(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log") as writer:
        writer.submit(make_records(5))
    [partition] = (tmp_path / "log").glob("date=*")
    (partition / ".part-crashed.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert read_rows(tmp_path / "log").num_rows == 5


def test_rows_of_two_versions_and_two_dates_go_to_separate_files(tmp_path: Path) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with running_writer(tmp_path / "log", flush_every_records=1000, flush_interval_seconds=0.5) as writer:
        writer.submit(make_records(4, version="1") + make_records(3, start=4, version="2"))
        writer.submit(make_records(2, start=7, version="2", at=yesterday))
    files = sorted((tmp_path / "log").rglob("*.parquet"))
    assert len(files) == 3
    assert {len(set(pq.read_table(f).column("model_version").to_pylist())) for f in files} == {1}
    assert {p.name for p in (tmp_path / "log").glob("date=*")} == {
        f"date={yesterday.date().isoformat()}",
        f"date={datetime.now(UTC).date().isoformat()}",
    }


# ------------------------------------------------------------------ privacy


def test_dropped_fields_are_not_written(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log", drop_fields=("personal_status_and_sex", "telephone")) as writer:
        writer.submit(make_records(5))
    table = read_rows(tmp_path / "log")
    assert "personal_status_and_sex" not in table.column_names
    assert "telephone" not in table.column_names
    assert table.num_rows == 5


def test_hashed_fields_hold_a_keyed_hash_that_cannot_be_read_back(tmp_path: Path) -> None:
    records = make_records(30)
    with running_writer(tmp_path / "log", hash_fields=("age_in_years", "foreign_worker")) as writer:
        writer.submit(records)
    table = read_rows(tmp_path / "log").sort_by("request_id")
    assert table.schema.field("age_in_years").type == pa.string()
    for record, row in zip(records, table.to_pylist(), strict=True):
        for name in ("age_in_years", "foreign_worker"):
            clear = record[name]
            if clear is None:
                assert row[name] is None
                continue
            assert re.fullmatch(r"[0-9a-f]{64}", row[name]), row[name]
            assert row[name] == keyed_hash(KEY.encode(), clear)
            # without the key, hashing every possible value does not find it
            assert row[name] != hashlib.sha256(str(clear).encode()).hexdigest()
            assert row[name] != keyed_hash(b"another key", clear)


def test_hash_fields_without_a_key_refuse_to_start(tmp_path: Path) -> None:
    writer = PredictionLogWriter(
        PredictionLogConfig(hash_fields=("age_in_years",)),
        directory=tmp_path / "log",
        schema=SCHEMA,
        client_factory=None,
        hash_key=None,
    )
    with pytest.raises(PredictionLogError, match="CREDIT_RISK_LOG_HASH_KEY"):
        writer.start()


def test_privacy_settings_naming_unknown_fields_refuse_to_start(tmp_path: Path) -> None:
    writer = PredictionLogWriter(
        PredictionLogConfig(drop_fields=("no_such_field",)), directory=tmp_path, schema=SCHEMA, client_factory=None
    )
    with pytest.raises(PredictionLogError, match=r"drop_fields.*no_such_field"):
        writer.start()


# ------------------------------------------------------------------ retention, start, back-pressure


def test_retention_deletes_partitions_older_than_the_configured_days(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    today = datetime.now(UTC).date()
    kept_days = [today, today - timedelta(days=10)]
    old_days = [today - timedelta(days=11), date(2020, 1, 1)]
    for day in kept_days + old_days:
        (directory / f"date={day.isoformat()}").mkdir(parents=True)
        (directory / f"date={day.isoformat()}" / "part-x.parquet").write_bytes(b"x")
    (directory / "not-a-partition").mkdir()
    with running_writer(directory, retention_days=10):
        remaining = {p.name for p in directory.iterdir() if not p.name.startswith("_")}
    assert remaining == {f"date={d.isoformat()}" for d in kept_days} | {"not-a-partition"}


def test_an_unwritable_directory_refuses_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    writer = PredictionLogWriter(PredictionLogConfig(), directory=blocker / "log", schema=SCHEMA, client_factory=None)
    with pytest.raises(PredictionLogError, match="not writable"):
        writer.start()


def test_a_full_queue_refuses_at_once_and_nothing_accepted_is_lost(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    directory.mkdir()
    # a file where today's partition folder should be: every Parquet write fails until it is removed
    blocker = directory / f"date={datetime.now(UTC).date().isoformat()}"
    blocker.write_text("")
    with running_writer(directory, queue_max_records=50, submit_timeout_seconds=2.0, flush_every_records=10) as writer:
        writer.submit(make_records(50))
        started = time.monotonic()
        with pytest.raises(PredictionLogFullError, match="queue full"):
            writer.submit(make_records(1, start=50))
        # the service calls submit on its event loop: it must never wait there (finding 2)
        assert time.monotonic() - started < 0.05, "submit waited for room: it would stall the event loop"
        assert writer.stats()["rejected_records"] == 1
        wait_until_true(lambda: writer.stats()["write_errors"] >= 1)
        assert "write errors" in (writer.health_problem() or ""), writer.health_problem()
        blocker.unlink()
        wait_until_true(lambda: writer.queued == 0)
        assert writer.health_problem() is None
        writer.submit(make_records(5, start=51))  # room again once the disk is back
    table = read_rows(directory)
    assert table.num_rows == 55
    assert "req-0000050" not in table.column("request_id").to_pylist()


@pytest.mark.parametrize("converter", ["a child process", "a child killed between segments", "a child that dies"])
def test_segments_become_the_same_parquet_rows_in_a_child_process_or_in_this_one(
    tmp_path: Path, converter: str
) -> None:
    records = make_records(300)
    with running_writer(tmp_path / "here", out_of_process=False) as writer:
        writer.submit(records)
        wait_until_true(lambda: writer.queued == 0)
    expected = read_rows(tmp_path / "here").sort_by("request_id")
    with running_writer(tmp_path / "child", out_of_process=True) as writer:
        if converter == "a child that dies":  # a real process that ends at once: every segment falls back
            writer._converter = Converter([sys.executable, "-c", "raise SystemExit(3)"])
        for start in (0, 100, 200):
            writer.submit(records[start : start + 100])
            wait_until_true(lambda: writer.queued == 0)
            child = writer._converter.pid
            if converter == "a child killed between segments" and child is not None:
                os.kill(child, 9)
        stats = writer.stats()
    if converter == "a child that dies":
        assert stats["converted_out_of_process"] == 0 and stats["converter_failures"] >= 3, stats
    else:
        assert stats["converted_out_of_process"] >= 3 and stats["converter_failures"] == 0, stats
    assert stats["written_records"] == 300
    got = read_rows(tmp_path / "child").sort_by("request_id")
    assert got.equals(expected), "the child's Parquet rows differ from this process's"


def test_a_queue_above_its_high_water_mark_is_a_health_problem(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log", queue_max_records=100, flush_interval_seconds=30) as writer:
        writer.submit(make_records(int(100 * HIGH_WATER) - 1))
        assert writer.health_problem() is None
        writer.submit(make_records(1, start=1000))  # waits a whole flush interval for Parquet: no write error
        problem = writer.health_problem() or ""
        assert "high-water" in problem and "write errors" not in problem, problem


def wait_until_true(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_submit_after_close_is_refused(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log") as writer:
        pass
    with pytest.raises(PredictionLogClosedError):
        writer.submit(make_records(1))


def test_close_flushes_everything_queued(tmp_path: Path) -> None:
    with running_writer(tmp_path / "log", flush_every_records=10_000, flush_interval_seconds=60) as writer:
        writer.submit(make_records(777))
        assert writer.stats()["queued"] == 777
    assert writer.stats()["queued"] == 0
    assert read_rows(tmp_path / "log").num_rows == 777


# ------------------------------------------------------------------ MLflow upload


def test_closed_files_are_uploaded_to_the_serving_run_of_their_version(trained, tmp_path: Path) -> None:
    store, version = trained.store, f"upload-{uuid.uuid4().hex[:8]}"  # a run of its own in the shared store
    with running_writer(tmp_path / "log", client_factory=lambda: store.client) as writer:
        writer.submit(make_records(5, version=version))
    assert writer.stats()["uploaded_files"] == 1
    run_id = registry.serving_run_id(
        store.client, experiment="credit-risk-serving", model_name="credit-risk", model_version=version
    )
    [path] = registry.list_artifact_paths(store.client, run_id, ARTIFACT_DIR)
    [local] = (tmp_path / "log").rglob("*.parquet")
    assert path == f"{ARTIFACT_DIR}/{local.parent.name}/{local.name}"


def test_a_failed_upload_is_retried_without_holding_up_writes(trained, tmp_path: Path) -> None:
    store = trained.store
    calls = {"n": 0}

    def flaky_client():
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("registry unreachable")
        return store.client

    with running_writer(tmp_path / "log", client_factory=flaky_client) as writer:
        writer.submit(make_records(5, version=f"retry-{uuid.uuid4().hex[:8]}"))
        deadline = time.monotonic() + 1.5  # the retry comes after a 2 s backoff
        while writer.stats()["upload_failures"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_rows(tmp_path / "log").num_rows == 5, "the file is on disk while its upload waits"
        assert writer.stats()["uploaded_files"] == 0
        deadline = time.monotonic() + 10
        while writer.stats()["uploaded_files"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = writer.stats()
    assert stats["upload_failures"] == 1
    assert stats["uploaded_files"] == 1


WRITER_SCRIPT = """
import sys
from pathlib import Path
from credit_risk.config import PredictionLogConfig
from tests.serving.test_prediction_log import SCHEMA, make_records
from serving.prediction_log import PredictionLogWriter

directory, offset = Path(sys.argv[1]), int(sys.argv[2])
writer = PredictionLogWriter(
    PredictionLogConfig(flush_every_records=50, flush_interval_seconds=0.05),
    directory=directory, schema=SCHEMA, client_factory=None,
)
writer.start()
for i in range(0, 3000, 10):
    writer.submit(make_records(10, start=offset + i))
writer.close(timeout=30)
"""


def test_two_processes_writing_one_directory_never_clobber_each_other(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(directory), str(offset)], cwd=PROJECT_ROOT)
        for offset in (0, 1_000_000)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ids = read_rows(directory).column("request_id").to_pylist()
    assert len(ids) == 6000
    assert len(set(ids)) == 6000
    pids = {path.name.split("-")[2] for path in directory.rglob("*.parquet")}
    assert len(pids) == 2, "each process writes its own files"


CONVERTING_SCRIPT = """
import sys, time
from pathlib import Path
from credit_risk.config import PredictionLogConfig
from tests.serving.test_prediction_log import SCHEMA, make_records
from serving.prediction_log import PredictionLogWriter

writer = PredictionLogWriter(
    PredictionLogConfig(flush_every_records=10, flush_interval_seconds=0.05),
    directory=Path(sys.argv[1]), schema=SCHEMA, client_factory=None,
)
writer.start()
writer.submit(make_records(10))
while writer.stats()["converted_out_of_process"] == 0:
    time.sleep(0.01)
print(writer._converter.pid, flush=True)
time.sleep(600)
"""


def test_the_converter_process_dies_with_a_killed_service(tmp_path: Path) -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", CONVERTING_SCRIPT, str(tmp_path / "log")], cwd=PROJECT_ROOT, stdout=subprocess.PIPE
    )
    try:
        assert service.stdout is not None
        converter = int(service.stdout.readline())
        assert Path(f"/proc/{converter}").exists(), "the converter was not running"
        service.kill()  # SIGKILL: no shutdown code runs; an idle child sees its stdin close, a busy one is
        # killed by the kernel (PR_SET_PDEATHSIG; this test shows the idle case)
        service.wait(timeout=10)
        wait_until_true(lambda: not _alive(converter), timeout=10)
    finally:
        service.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent (init, now) has yet to reap it


def test_temporary_files_of_dead_writers_are_removed_and_a_live_writers_kept(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    partition = directory / f"date={datetime.now(UTC).date().isoformat()}"
    partition.mkdir(parents=True)
    with running_writer(tmp_path / "other" / "log", lease_seconds=5) as live_writer:
        pass  # a writer id that existed; its folder is gone: that writer is dead
    dead_id = live_writer.wal_id
    stale = partition / f".part-{dead_id}-000000001-000.parquet.0a1b2c3d.tmp"
    fresh = partition / f".part-{dead_id}-000000002-000.parquet.0a1b2c3d.tmp"  # a taker may be writing it
    for path in (stale, fresh):
        path.write_bytes(b"half")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    with running_writer(directory, lease_seconds=5) as first:
        mine = partition / f".part-{first.wal_id}-000000009-000.parquet.0a1b2c3d.tmp"
        mine.write_bytes(b"in progress")
        os.utime(mine, (time.time() - 60, time.time() - 60))
        with running_writer(directory, lease_seconds=5):  # its start looks at the temporaries
            assert not stale.exists(), "a dead writer's old temporary is removed"
            assert fresh.exists(), "a temporary written a moment ago may be a taker's in progress"
            assert mine.exists(), "a live writer's file in progress must not be touched"


@pytest.mark.parametrize(
    "line",
    [
        b'{"r": {"a": 123456789012345678901234567890, "b": 1}}',  # as record_line's fallback writes it
        b'{"r": {"a": 18446744073709551615, "b": -9223372036854775808}}',
        b'{"r": {"a": 1e19, "b": 2.5}}',
        b'{"r": {"a": NaN}}',
        b'{"r": {"a": "\\ud800"}}',
        b'{"schema": ["credit-risk", "1"], "fields": {}}',
    ],
)
def test_a_segment_line_is_read_as_the_standard_library_reads_it(line: bytes) -> None:
    got, want = wal_line(line), json.loads(line)
    assert repr(got) == repr(want) and [type(v) for v in got.get("r", {}).values()] == [
        type(v) for v in want.get("r", {}).values()
    ]


def test_records_come_back_from_the_write_ahead_file_as_they_went_in() -> None:
    for record in make_records(20):
        line = record_line(record)
        assert wal_line(line) == json.loads(line)
