"""The one way the product writes a file whole (:func:`atomic_write`) or once (:func:`write_once`)."""

from __future__ import annotations

import stat
import threading
from pathlib import Path
from typing import IO, Any

import pytest

from credit_risk.private_files import atomic_write, write_once

pytestmark = pytest.mark.code


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_the_file_whole_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "folder" / "index.json"
    atomic_write(target, lambda handle: handle.write(b"first"))
    atomic_write(target, lambda handle: handle.write(b"second"))
    assert target.read_bytes() == b"second"
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["index.json"]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    atomic_write(target, lambda handle: handle.write(b"kept"))

    def fails(handle: IO[Any]) -> None:
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_write_once_keeps_the_first_content_and_returns_it(tmp_path: Path) -> None:
    target = tmp_path / "request-ids.key"
    assert write_once(target, b"first") == b"first"
    assert write_once(target, b"second") == b"first"
    assert target.read_bytes() == b"first" and _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["request-ids.key"]


def test_writers_racing_on_write_once_all_get_the_one_content_written(tmp_path: Path) -> None:
    target = tmp_path / "request-ids.key"
    start = threading.Barrier(8)
    got: list[bytes] = []

    def writer(index: int) -> None:
        start.wait()
        got.append(write_once(target, f"key-{index}".encode()))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and len(set(got)) == 1, got
    assert target.read_bytes() == got[0]
    assert [p.name for p in tmp_path.iterdir()] == ["request-ids.key"]
