"""Taking over the files of writers that are dead (SIGKILL, power loss, a host gone).

A dead writer's segments become Parquet files under its own writer id (so a segment converted twice,
by two writers or after a crash, rewrites the same files: exactly once), then its folder is removed and
the temporaries it left are deleted. Whether a writer is dead is :mod:`serving.prediction_log.lease`'s
to say: a live writer's files, on this host or another, are never touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from credit_risk.schema import FeatureSchema
from serving.prediction_log.files import SegmentOutput, write_segment
from serving.prediction_log.housekeeping import remove_stale_temporaries
from serving.prediction_log.lease import abandoned_wals, is_live
from serving.prediction_log.wal import WAL_DIR, VersionKey, read_segment, segments_of

log = logging.getLogger(__name__)


def take_over(
    directory: Path,
    *,
    own: str,
    lease_seconds: float,
    arrow_schema: Callable[[VersionKey, FeatureSchema | None], pa.Schema],
    written: Callable[[SegmentOutput], None],
) -> None:
    """Convert every dead writer's segments (``written`` is told of each output), remove its folder and
    old temporaries; raises what a conversion raised (OSError naming the folder)."""
    for wal_id, lock in abandoned_wals(directory, own=own, lease_seconds=lease_seconds):
        folder = directory / WAL_DIR / wal_id
        try:
            records = 0
            for number, path in segments_of(folder):
                try:
                    segment = read_segment(path, number)
                except FileNotFoundError:  # another host's writer took it over meanwhile (the same files)
                    continue
                written(write_segment(directory, wal_id, segment, arrow_schema))
                records += len(segment.records)
                path.unlink(missing_ok=True)
            log.info("prediction log: recovered %d record(s) from write-ahead folder %s", records, wal_id)
            shutil.rmtree(folder, ignore_errors=True)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot recover write-ahead folder {wal_id}: {exc.strerror or exc}") from exc
        finally:
            lock.release()
    remove_stale_temporaries(directory, lambda writer: not is_live(directory, writer, lease_seconds), lease_seconds)
