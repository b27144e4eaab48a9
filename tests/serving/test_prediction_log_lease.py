"""Writers sharing one log directory across hosts: a live writer's files are never taken over, a dead one's
are once its lease has expired (a lock held on another host is invisible here, as on shared storage)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from serving.prediction_log.lease import LEASE_FILE
from serving.prediction_log.wal import WAL_DIR
from tests.serving.test_prediction_log import make_records, read_rows, running_writer
from tests.serving.test_prediction_log_durability import _orphan_segment


def _lease_of_another_host(directory: Path, writer: str, *, expires_in: float) -> None:
    lease = {
        "writer": writer,
        "host": "host-b",
        "boot_id": "another-kernel",
        "pid": 7,
        "expires_at": time.time() + expires_in,
    }
    (directory / WAL_DIR / writer / LEASE_FILE).write_text(json.dumps(lease))


def test_a_live_writer_of_another_host_keeps_its_segments(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _orphan_segment(directory, "host_b-0123456789ab", make_records(10))  # its lock is free here: another host's
    _lease_of_another_host(directory, "host_b-0123456789ab", expires_in=60)
    with running_writer(directory, lease_seconds=5):
        pass
    assert not list(directory.rglob("*.parquet")), "a starting writer converted a live writer's segment"
    assert (directory / WAL_DIR / "host_b-0123456789ab" / "seg-000000001.jsonl").exists()


def test_a_dead_writer_of_another_host_is_taken_over_once_its_lease_expires(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    records = make_records(10)
    _orphan_segment(directory, "host_b-0123456789ab", records)
    _lease_of_another_host(directory, "host_b-0123456789ab", expires_in=2)
    with running_writer(directory, lease_seconds=1):  # looks again every lease_seconds
        deadline = time.monotonic() + 20
        while (directory / WAL_DIR / "host_b-0123456789ab").exists():
            assert time.monotonic() < deadline, "the dead writer's folder was never taken over"
            time.sleep(0.1)
    ids = read_rows(directory).column("request_id").to_pylist()
    assert sorted(ids) == sorted(r["request_id"] for r in records), "each of its records exactly once"
