"""Housekeeping of the log folder: the writability check, retention, temporaries of dead writers."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from credit_risk.decision_log.paths import PARTITION_DIR

log = logging.getLogger(__name__)

# .part-<writer id>-<segment>-<rank>.parquet[.<nonce>].tmp (files.py)
_TEMPORARY = re.compile(r"^\.part-(.+)-\d{9}-\d{3}\.parquet(?:\.[0-9a-f]+)?\.tmp$")


def check_writable(directory: Path, probe_name: str) -> None:
    """Create the folder if needed and write a probe file; raises OSError when it cannot."""
    probe = directory / f".probe-{probe_name}"
    directory.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"")
    probe.unlink()


def delete_old_partitions(directory: Path, *, today: date, retention_days: int) -> list[str]:
    """Delete ``date=`` partitions older than ``retention_days``; returns the dates deleted."""
    oldest_kept = today - timedelta(days=retention_days)
    deleted = []
    with contextlib.suppress(FileNotFoundError):
        for child in directory.iterdir():
            match = PARTITION_DIR.match(child.name)
            if not match or not child.is_dir():
                continue
            with contextlib.suppress(ValueError):
                if date.fromisoformat(match.group(1)) < oldest_kept:
                    # another worker may be deleting the same folder: ignore what has gone
                    shutil.rmtree(child, ignore_errors=True)
                    deleted.append(match.group(1))
    if deleted:
        log.info("prediction log retention: deleted partitions %s", deleted)
    return deleted


def remove_stale_temporaries(directory: Path, is_dead: Callable[[str], bool], older_than: float) -> None:
    """Temporary files a dead writer left behind (readers skip them anyway): those whose writer id
    ``is_dead`` and that nobody touched for ``older_than`` seconds (a writer taking a dead one's
    segments over writes temporaries under the dead one's name)."""
    for path in directory.glob("date=*/.part-*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match is None or not is_dead(match.group(1)):
            continue
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink(missing_ok=True)
