"""The durable log: write-ahead file, recovery after SIGKILL exactly once, the served version's own schema,
privacy wherever a record is written, uploads reconciled after a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, PredictionLogConfig, load_project_config
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import ARTIFACT_DIR, INVALID_DIR
from credit_risk.decision_log.privacy import keyed_hash
from credit_risk.schema import FeatureSchema
from serving.prediction_log import PredictionLogWriteError, PredictionLogWriter
from serving.prediction_log.files import write_segment
from serving.prediction_log.wal import (
    WAL_DIR,
    Segment,
    SegmentFile,
    read_segment,
    record_line,
    schema_line,
    segment_path,
)
from tests.serving.test_prediction_log import KEY, SCHEMA, make_records, read_rows, running_writer, wait_until_true

pytestmark = pytest.mark.code


# ------------------------------------------------------------------ SIGKILL and recovery

ACKING_WRITER = """
import asyncio, sys
from pathlib import Path
from credit_risk.config import PredictionLogConfig
from tests.serving.test_prediction_log import SCHEMA, make_records
from serving.prediction_log import PredictionLogWriter

async def main():
    writer = PredictionLogWriter(
        PredictionLogConfig(flush_every_records=10_000, flush_interval_seconds=30),
        directory=Path(sys.argv[1]), schema=SCHEMA, client_factory=None,
    )
    writer.start()
    print("started", flush=True)
    i = 0
    while True:
        records = make_records(1 + i % 3, start=i)
        ticket = writer.submit(records)
        await writer.wait_durable(ticket)  # what the service awaits before it answers
        print(" ".join(r["request_id"] for r in records), flush=True)
        i += len(records)

asyncio.run(main())
"""


def test_every_acknowledged_record_survives_sigkill_exactly_once(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    proc = subprocess.Popen(
        [sys.executable, "-c", ACKING_WRITER, str(directory)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 100:  # enough acknowledged records to prove something, on a busy machine too
        assert time.monotonic() < deadline, f"only {len(acknowledged)} records acknowledged in 60 s"
        acknowledged += proc.stdout.readline().split()
    proc.kill()  # SIGKILL: no drain; the segment (30 s, 10,000 records) never became Parquet
    acknowledged += [rid for line in proc.stdout.read().split("\n") for rid in line.split()]
    proc.wait(timeout=10)
    assert not list(directory.rglob("*.parquet")), "nothing should be in Parquet before the restart"
    with running_writer(directory) as writer:
        assert writer.stats()["recovered_records"] >= len(acknowledged)
    ids = read_rows(directory).column("request_id").to_pylist()
    assert len(ids) == len(set(ids)), "a recovered record was written twice"
    missing = set(acknowledged) - set(ids)
    assert not missing, f"{len(missing)} acknowledged record(s) lost, e.g. {sorted(missing)[:3]}"
    assert not (directory / WAL_DIR).exists() or not any((directory / WAL_DIR).iterdir()), "WAL not cleaned up"


def _orphan_segment(directory: Path, wal_id: str, records: list[dict[str, Any]]) -> Segment:
    """A segment as a writer that died would leave it: its folder, no live lock holder."""
    folder = directory / WAL_DIR / wal_id
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    path = segment_path(folder, 1)
    key = ("credit-risk", "1")
    path.write_bytes(schema_line(key, SCHEMA) + b"".join(record_line(r) for r in records))
    return Segment(1, path, records=records, schemas={key: SCHEMA})


def test_a_crash_between_the_parquet_rename_and_the_wal_deletion_is_replayed_exactly_once(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    records = make_records(40)
    segment = _orphan_segment(directory, "deadhost-1-0badc0de", records)
    # the Parquet file of that segment was renamed into place, then the process died before deleting the segment
    write_segment(directory, "deadhost-1-0badc0de", segment, lambda key, schema: log_schema(schema or SCHEMA))
    assert read_rows(directory).num_rows == 40
    with running_writer(directory):
        pass
    ids = read_rows(directory).column("request_id").to_pylist()
    assert sorted(ids) == sorted(r["request_id"] for r in records), "each record exactly once"
    assert not (directory / WAL_DIR / "deadhost-1-0badc0de").exists()


def test_a_torn_last_line_of_the_wal_is_not_recovered(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    segment = _orphan_segment(directory, "deadhost-2-0badc0de", make_records(5))
    with segment.path.open("ab") as handle:
        handle.write(record_line(make_records(1, start=5)[0])[:-20])  # a write the crash cut short
    with running_writer(directory):
        pass
    assert sorted(read_rows(directory).column("request_id").to_pylist()) == [f"req-{i:07d}" for i in range(5)]


def test_groups_overwrite_zeros_written_ahead_and_recovery_reads_up_to_them(tmp_path: Path) -> None:
    # an fsync'd group overwrites zeros written ahead, so its fdatasync does not also commit a new file size
    # (bench/http_bench.py --durability); recovery reads up to the first zero byte, a torn last line dropped as before
    directory = tmp_path / "log"
    folder = directory / WAL_DIR / "deadhost-3-0badc0de"
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    path = segment_path(folder, 1)
    file = SegmentFile(path, zero_fill=True)
    file.ZERO_AHEAD = 8192  # a few records' worth, so the file grows several times
    records = make_records(60)
    file.append(schema_line(("credit-risk", "1"), SCHEMA), sync=True)
    sizes = []
    for record in records:
        file.append(record_line(record), sync=True)
        sizes.append(path.stat().st_size)
        assert sizes[-1] >= file.end + 1, "a group was written at the end of the file, not over zeros"
    assert 2 <= len(set(sizes)) <= file.end // 8192 + 1, f"the file grew {len(set(sizes))} times for 60 groups"
    file.append(record_line(make_records(1, start=60)[0])[:-20], sync=True)  # a write the crash cut short
    file.close(sync=False)
    ids = [f"req-{i:07d}" for i in range(60)]
    assert [r["request_id"] for r in read_segment(path, 1).records] == ids
    with running_writer(directory):
        pass
    assert sorted(read_rows(directory).column("request_id").to_pylist()) == ids


def test_the_wal_of_a_live_writer_is_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with running_writer(directory, flush_interval_seconds=30) as first:
        first.submit(make_records(10))
        with running_writer(directory) as second:
            assert second.stats()["recovered_records"] == 0, "a live writer's WAL must not be taken over"
    ids = read_rows(directory).column("request_id").to_pylist()
    assert sorted(ids) == [f"req-{i:07d}" for i in range(10)]


# ------------------------------------------------------------------ the served version's own schema (finding 5)


def _schema_with(**changes: Any) -> FeatureSchema:
    data = SCHEMA.model_dump(mode="json")
    data["version"] = SCHEMA.version + 1
    if "add" in changes:
        data["fields"].append(changes["add"])
    for name, kind in changes.get("retype", {}).items():
        spec = next(f for f in data["fields"] if f["name"] == name)
        spec.update(kind)
    return FeatureSchema.model_validate(data)


NEW_FIELD = {
    "name": "months_at_employer",
    "type": "integer",
    "label": "Months at employer",
    "description": "Months with the current employer",
    "reason_code": "EMP2",
    "min": 0,
    "max": 600,
}


def test_a_field_added_in_the_served_version_is_logged(tmp_path: Path) -> None:
    served = _schema_with(add=NEW_FIELD)
    records = [{**r, "months_at_employer": 12 + i} for i, r in enumerate(make_records(5, version="2"))]
    with running_writer(tmp_path / "log") as writer:
        writer.submit(records, schema=served)
    table = read_rows(tmp_path / "log")
    assert "months_at_employer" in table.column_names, "the served version's new field has no column"
    assert sorted(table.column("months_at_employer").to_pylist()) == [12, 13, 14, 15, 16]
    assert not (tmp_path / "log" / INVALID_DIR).exists()


def test_a_changed_field_type_is_logged_in_its_new_type_not_salvaged(tmp_path: Path) -> None:
    codes = [{"code": f"d{i}", "label": f"{i} months", "source": f"D{i}"} for i in range(3)]
    served = _schema_with(
        retype={
            "duration_in_month": {
                "type": "categorical",
                "categories": codes,
                "min": None,
                "max": None,
                "monotone": None,
                "default": None,
                "recourse": None,  # a categorical field's recourse would declare an order
            }
        }
    )
    records = [{**r, "duration_in_month": f"d{i % 3}"} for i, r in enumerate(make_records(6, version="2"))]
    with running_writer(tmp_path / "log") as writer:
        writer.submit(records, schema=served)
    assert not (tmp_path / "log" / INVALID_DIR).exists(), "records of a retyped field went to the salvage"
    [path] = (tmp_path / "log").rglob("*.parquet")
    assert pq.read_table(path).column("duration_in_month").to_pylist() == [f"d{i % 3}" for i in range(6)]


def test_privacy_settings_apply_to_the_salvage_and_the_wal(tmp_path: Path) -> None:
    hashed, dropped = "purpose", "credit_history"
    good = make_records(3)
    bad = make_records(1, start=3)[0] | {"duration_in_month": "not a number"}  # does not fit its column
    directory = tmp_path / "log"
    with running_writer(directory, hash_fields=[hashed], drop_fields=[dropped], flush_interval_seconds=30) as writer:
        writer.submit([*good, bad])
        wait_until_true(lambda: any((directory / WAL_DIR).rglob("seg-*.jsonl")))
        [wal] = (directory / WAL_DIR).rglob("seg-*.jsonl")
        wait_until_true(lambda: wal.read_bytes().count(b"\n") >= 5)  # the schema line and four records
        wal_records = read_segment(wal, 1).records  # as recovery reads it (the zeros ahead end it)
    assert all(dropped not in r for r in wal_records), "a dropped field reached the write-ahead file"
    assert [r[hashed] for r in wal_records] == [keyed_hash(KEY.encode(), r[hashed]) for r in [*good, bad]]
    [salvage] = (directory / INVALID_DIR).glob("*.jsonl")
    [item] = [json.loads(line) for line in salvage.read_text().splitlines()]
    assert item["record"]["request_id"] == bad["request_id"]
    assert dropped not in item["record"], "a dropped field was written in the salvage"
    assert item["record"][hashed] == keyed_hash(KEY.encode(), bad[hashed]), "the salvage holds a clear value"
    assert read_rows(directory).num_rows == 3


# ------------------------------------------------------------------ uploads after a restart (finding 8)


def test_files_whose_upload_never_succeeded_are_uploaded_after_a_restart(trained, tmp_path: Path) -> None:
    store, version = trained.store, f"reconcile-{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "log"

    def unreachable():
        raise ConnectionError("registry unreachable")

    with running_writer(directory, client_factory=unreachable, upload_retry_max_seconds=0.1) as writer:
        writer.submit(make_records(5, version=version))
    assert writer.stats()["uploaded_files"] == 0
    [local] = directory.rglob("*.parquet")
    with running_writer(directory, client_factory=lambda: store.client) as restarted:
        wait_until_true(lambda: restarted.stats()["uploaded_files"] >= 1, timeout=60)
    run_id = registry.serving_run_id(
        store.client, experiment="credit-risk-serving", model_name="credit-risk", model_version=version
    )
    assert registry.list_artifact_paths(store.client, run_id, ARTIFACT_DIR) == [
        f"{ARTIFACT_DIR}/{local.parent.name}/{local.name}"
    ]
    with running_writer(directory, client_factory=lambda: store.client) as again:
        time.sleep(0.5)
    assert again.stats()["uploaded_files"] == 0, "an uploaded file was uploaded again after a second restart"


def test_a_shutdown_with_the_registry_failing_tries_one_upload_and_keeps_every_file(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    calls = {"n": 0}

    def failing():
        calls["n"] += 1
        raise ConnectionError("registry unreachable")

    with running_writer(directory, client_factory=failing, flush_every_records=5, flush_interval_seconds=30) as writer:
        for start in range(0, 20, 5):
            writer.submit(make_records(5, start=start))
            wait_until_true(lambda n=start // 5 + 1: len(list(directory.rglob("*.parquet"))) >= n)
        wait_until_true(lambda: calls["n"] >= 4)  # each file has failed once while the writer ran
        before_close = calls["n"]
    assert calls["n"] - before_close == 1, "after the first failure at shutdown the other files wait for the next start"
    assert writer.stats()["uploaded_files"] == 0
    assert read_rows(directory).num_rows == 20, "every file is kept locally"


# ------------------------------------------------------------------ configuration


def test_durability_defaults_to_fsync_and_refuses_an_unknown_mode() -> None:
    assert PredictionLogConfig().durability == "fsync"
    assert load_project_config().model.prediction_log.durability == "fsync", "config/model_config.yaml"
    with pytest.raises(ValidationError, match="durability"):
        PredictionLogConfig(durability="sometimes")


def test_interval_durability_answers_without_waiting_and_still_logs_every_record(tmp_path: Path) -> None:
    async def submit_all(writer) -> float:
        slowest = 0.0
        for i in range(50):
            started = time.perf_counter()
            await writer.wait_durable(writer.submit(make_records(1, start=i)))
            slowest = max(slowest, time.perf_counter() - started)
        return slowest

    with running_writer(tmp_path / "log", durability="interval") as writer:
        slowest = asyncio.run(submit_all(writer))
        assert writer.stats()["fsyncs"] == 0, "interval mode must not fsync per group"
    assert slowest < 0.05, f"interval mode waited {slowest:.3f}s for the disk"
    assert sorted(read_rows(tmp_path / "log").column("request_id").to_pylist()) == [f"req-{i:07d}" for i in range(50)]


def test_fsync_durability_groups_concurrent_records_into_few_fsyncs(tmp_path: Path) -> None:
    async def submit_concurrently(writer) -> None:
        tickets = [writer.submit(make_records(1, start=i)) for i in range(200)]
        await asyncio.gather(*(writer.wait_durable(t) for t in tickets))

    with running_writer(tmp_path / "log", flush_interval_seconds=30) as writer:
        asyncio.run(submit_concurrently(writer))
        fsyncs = writer.stats()["fsyncs"]
    assert 1 <= fsyncs < 200, f"{fsyncs} fsyncs for 200 concurrent records: no group commit"
    assert read_rows(tmp_path / "log").num_rows == 200


@pytest.mark.parametrize(
    ("device", "refusal"),
    [("/dev/full", "write failed"), ("/dev/null", "fdatasync failed")],
    ids=["the append fails (a full disk)", "the fdatasync fails (writes taken, EINVAL on sync)"],
)
def test_a_failed_wal_write_refuses_its_requests_and_leaves_no_row(tmp_path: Path, device: str, refusal: str) -> None:
    async def submit_and_wait(writer: PredictionLogWriter, records: list[dict[str, Any]]) -> None:
        await writer.wait_durable(writer.submit(records))

    directory = tmp_path / "log"
    with running_writer(directory, flush_interval_seconds=30) as writer:
        (directory / WAL_DIR / writer.wal_id / "seg-000000001.jsonl").symlink_to(device)  # the first segment
        with pytest.raises(PredictionLogWriteError, match=refusal):
            asyncio.run(submit_and_wait(writer, make_records(3)))
        assert "write errors" in (writer.health_problem() or ""), writer.health_problem()
        assert writer.stats()["rejected_records"] == 3
        asyncio.run(submit_and_wait(writer, make_records(2, start=3)))  # the failed segment closed: a new one
        assert writer.health_problem() is None
    ids = sorted(read_rows(directory).column("request_id").to_pylist())
    assert ids == ["req-0000003", "req-0000004"], "a refused (503) record reached the table"


def test_on_the_service_loop_a_killed_fsync_process_is_replaced_and_asked_again(tmp_path: Path) -> None:
    # as the service runs it: bound to the event loop, which appends once per iteration and reads the answers
    directory = tmp_path / "log"
    answered: list[str] = []

    async def one(writer: PredictionLogWriter, i: int) -> None:
        records = make_records(1, start=i)
        await writer.wait_durable(writer.submit(records))
        answered.append(records[0]["request_id"])

    async def serve(writer: PredictionLogWriter) -> None:
        writer.bind_loop()
        await asyncio.gather(*(one(writer, i) for i in range(200)))
        first = writer.fsync_pid
        assert first is not None
        os.kill(first, signal.SIGSTOP)  # it takes no more requests: the next ones wait, unanswered
        burst = asyncio.gather(*(one(writer, i) for i in range(200, 400)))
        await asyncio.sleep(0.3)
        assert len(answered) == 200, "answered before the fsync process could sync them"
        os.kill(first, signal.SIGKILL)  # dies with every request of the burst unanswered: asked again
        await burst
        assert writer.fsync_pid not in (None, first), "no new fsync process"

    with running_writer(directory, flush_every_records=10_000, flush_interval_seconds=30) as writer:
        asyncio.run(serve(writer))
        stats = writer.stats()
    assert stats["fsync_process_restarts"] == 1
    assert 1 <= stats["fsyncs"] < 100, f"{stats['fsyncs']} fsyncs for 400 records of two bursts: no group commit"
    ids = read_rows(directory).column("request_id").to_pylist()
    assert len(ids) == len(set(ids)) == 400, "a record was lost or written twice"
    assert sorted(answered) == sorted(ids)


def test_the_fsync_process_outlasts_a_ctrl_c_and_ends_with_its_writer(tmp_path: Path) -> None:
    # the service still needs the child's answers while it drains after a Ctrl-C or a SIGTERM; the child
    # ends when the writer closes its socket
    async def submit_and_wait(writer: PredictionLogWriter, start: int) -> None:
        await writer.wait_durable(writer.submit(make_records(5, start=start)))

    with running_writer(tmp_path / "log") as writer:
        asyncio.run(submit_and_wait(writer, 0))  # the child is up and answering
        child = writer.fsync_pid
        assert child is not None
        os.kill(child, signal.SIGINT)
        os.kill(child, signal.SIGTERM)
        asyncio.run(submit_and_wait(writer, 5))
        assert writer.fsync_pid == child and writer.stats()["fsync_process_restarts"] == 0
    assert not Path(f"/proc/{child}").exists(), "the fsync process outlived its writer"
    assert read_rows(tmp_path / "log").num_rows == 10
