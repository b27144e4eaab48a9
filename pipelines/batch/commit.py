"""How Spark tasks' own Parquet files become the job's output: staged per task attempt, committed by the driver.

The executors write their scored and rejected rows with pyarrow (no row
conversion or Parquet encoding in the JVM), each task attempt into a folder
of its own inside a staging folder next to the output::

    .<output name>.<job id>.staging/
        part-00003-0/scored.parquet    partition 3, attempt 0
        part-00003-0/rejects.parquet   (only if the partition had bad rows)
        part-00003-1/...               a retried or speculative attempt

Each task answers with one :class:`Written` record; ``collect()`` returns
exactly one per partition, from the attempt Spark counted. The driver then
moves those attempts' files into new output folders (``part-00003.parquet``),
writes ``_SUCCESS``, puts the new folders where the old output was, and
deletes the staging folder with every other attempt's files in it. Until the
commit the old output is untouched; a failed job leaves it as it was.

An attempt creates its folder without parents, so an attempt that outlives
the commit (a speculative duplicate) cannot re-create the staging folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.batch.options import rejects_path

log = logging.getLogger(__name__)

SCORED_FILE, REJECTS_FILE = "scored.parquet", "rejects.parquet"
# what each task answers (mapInArrow's output type)
WRITTEN_TYPE = "partition long, attempt long, rows long, rejected long"


def attempt_folder(staging: Path, partition: int, attempt: int) -> Path:
    """Where one task attempt writes; created without parents (see the module's note)."""
    folder = staging / f"part-{partition:05d}-{attempt}"
    folder.mkdir()
    return folder


@dataclass(frozen=True)
class Written:
    """One task attempt's answer: which partition and attempt, the rows it read and how many it rejected."""

    partition: int
    attempt: int
    rows: int
    rejected: int

    def record(self) -> pa.RecordBatch:
        return pa.record_batch(
            {"partition": [self.partition], "attempt": [self.attempt], "rows": [self.rows], "rejected": [self.rejected]}
        )


class StagedOutput:
    """The staging folder of one job writing ``output`` and its rejects folder."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.folder = self.output.with_name(f".{self.output.name}.{uuid.uuid4().hex}.staging")
        self.folder.mkdir()

    def commit(self, written: list[Written], scored: pa.Schema, rejects: pa.Schema) -> tuple[int, int]:
        """The counted attempts' files into place as the output and its rejects; (rows read, rows rejected).

        ``scored`` and ``rejects`` are the schemas of the empty file written
        when no attempt had rows of that kind, so that a reader still finds them.
        """
        partitions = [w.partition for w in written]
        if len(set(partitions)) != len(partitions):
            raise RuntimeError(f"spark answered twice for a partition: {sorted(partitions)}")
        targets = ((SCORED_FILE, scored, self.output), (REJECTS_FILE, rejects, rejects_path(self.output)))
        for name, schema, target in targets:
            ready = self.folder / f"_{name}"
            ready.mkdir()
            for w in sorted(written, key=lambda w: w.partition):
                part = self.folder / f"part-{w.partition:05d}-{w.attempt}" / name
                if part.exists():
                    os.replace(part, ready / f"part-{w.partition:05d}.parquet")
            if not any(ready.iterdir()):
                pq.write_table(schema.empty_table(), ready / "part-00000.parquet")
            (ready / "_SUCCESS").touch()
            self._swap(ready, target)
        self.discard()
        return sum(w.rows for w in written), sum(w.rejected for w in written)

    def _swap(self, ready: Path, target: Path) -> None:
        """``ready`` where ``target`` is; an old ``target`` (a folder or a file) is moved into staging first."""
        if target.is_dir() and not target.is_symlink():
            os.replace(target, self.folder / f"_old-{target.name}")
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(ready, target)

    def discard(self) -> None:
        """Delete the staging folder: uncounted attempts, an old output, or a failed job's files."""
        shutil.rmtree(self.folder, onerror=self._left)

    def _left(self, _function: object, path: str, _exc: object) -> None:
        # an attempt still writing (a speculative duplicate Spark is killing) can hold a file open
        log.warning("could not delete %s from the staging folder; it can be deleted by hand", path)
