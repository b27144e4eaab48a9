"""Housekeeping of the log folder: the writability check, retention, temporaries of dead processes."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

from credit_risk.decision_log.paths import PARTITION_DIR

log = logging.getLogger(__name__)


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


def remove_stale_temporaries(directory: Path, host: str) -> None:
    """Temporary files a crashed process of this host left behind (readers skip them anyway)."""
    pattern = re.compile(rf"^\.part-{re.escape(host)}-(\d+)-.*\.tmp$")
    for path in directory.glob("date=*/.part-*.tmp"):
        match = pattern.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
