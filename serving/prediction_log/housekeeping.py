"""Housekeeping of the log folder: the writability check, temporaries of dead processes (retention is in
:mod:`credit_risk.decision_log.retention`)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from credit_risk.private_files import private_dir

log = logging.getLogger(__name__)


def check_writable(directory: Path, probe_name: str) -> None:
    """Create the folder if needed and write a probe file; raises OSError when it cannot."""
    probe = directory / f".probe-{probe_name}"
    private_dir(directory)
    probe.write_bytes(b"")
    probe.unlink()


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
