"""Housekeeping of the log folder: the writability check, temporaries of dead writers (retention is in
:mod:`credit_risk.decision_log.retention`)."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from credit_risk.private_files import private_dir

log = logging.getLogger(__name__)

# .part-<writer id>-<segment>-<rank>.parquet[.<nonce>].tmp (files.py)
_TEMPORARY = re.compile(r"^\.part-(.+)-\d{9}-\d{3}\.parquet(?:\.[0-9a-f]+)?\.tmp$")


def check_writable(directory: Path, probe_name: str) -> None:
    """Create the folder if needed and write a probe file; raises OSError when it cannot."""
    probe = directory / f".probe-{probe_name}"
    private_dir(directory)
    probe.write_bytes(b"")
    probe.unlink()


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
