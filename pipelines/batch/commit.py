"""How Spark tasks' own Parquet files become the job's output: staged per task attempt, committed by the driver.

The executors write their scored and rejected rows with pyarrow (no row
conversion or Parquet encoding in the JVM), each task attempt into a folder
of its own inside a staging folder next to the output::

    .<output name>.<job id>.staging/
        part-00003-17/scored.parquet   partition 3, task attempt 17
        part-00003-17/rejects.parquet  (only if the partition had bad rows)
        part-00003-21/...              a retried or speculative attempt

Each task answers with one :class:`Written` record; ``collect()`` returns
exactly one per partition, from the attempt Spark counted. A task whose input
cannot be read answers with the error (Spark would retry it for nothing), and
the driver raises it. Otherwise the driver moves those attempts' files into
new output folders (``part-00003.parquet``), writes ``_SUCCESS`` and the marker
of an output of this job (``_credit_risk_output.json``), puts the new
folders where the old output was, and deletes the staging folder with every
other attempt's files in it. Until the
commit the old output is untouched; a failed job leaves it as it was.

An attempt creates its folder without parents, so an attempt that outlives
the commit (a speculative duplicate) cannot re-create the staging folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.batch.options import rejects_path
from pipelines.batch.output import refuse_foreign_output, write_marker

log = logging.getLogger(__name__)

SCORED_FILE, REJECTS_FILE = "scored.parquet", "rejects.parquet"
# what each task answers (mapInArrow's output type)
WRITTEN_TYPE = "partition long, attempt long, rows long, rejected long, error string"


def attempt_folder(staging: Path, partition: int, attempt: int) -> Path:
    """Where one task attempt writes (``attempt``: Spark's task attempt id, unique in the application,
    so a retried stage's attempts never meet an earlier one's folder); created without parents."""
    folder = staging / f"part-{partition:05d}-{attempt}"
    folder.mkdir()
    return folder


@dataclass(frozen=True)
class Written:
    """One task attempt's answer: its partition and attempt, the rows it read and how many it rejected;
    ``error`` names the file and what is wrong with it when the input could not be read."""

    partition: int
    attempt: int
    rows: int
    rejected: int
    error: str | None = None

    def record(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([self.__dict__], schema=_WRITTEN)


_WRITTEN = pa.schema(
    [
        ("partition", pa.int64()),
        ("attempt", pa.int64()),
        ("rows", pa.int64()),
        ("rejected", pa.int64()),
        ("error", pa.string()),
    ]
)


class StagedOutput:
    """The staging folder of one job writing ``output`` and its rejects folder."""

    def __init__(self, output: Path) -> None:
        # absolute, as the executors are handed it (they do not share the driver's working directory);
        # not resolved, so that an output that is a symbolic link is replaced as a link
        self.output = Path(os.path.abspath(output))
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.folder = self.output.with_name(f".{self.output.name}.{uuid.uuid4().hex}.staging")
        self.folder.mkdir()
        self.stranded = False  # a failed commit could not put the older output back: never deleted

    def commit(self, written: list[Written], scored: pa.Schema, rejects: pa.Schema) -> tuple[int, int]:
        """The counted attempts' files into place as the output and its rejects; (rows read, rows rejected).

        ``scored`` and ``rejects`` are the schemas of the empty file written
        when no attempt had rows of that kind, so that a reader still finds them.
        Both new folders are built before either older one is moved aside; if
        putting them in place fails, the older ones are put back.
        """
        partitions = [w.partition for w in written]
        if len(set(partitions)) != len(partitions):
            raise RuntimeError(f"spark answered twice for a partition: {sorted(partitions)}")
        # checked again here (the job checked before it started): only an earlier output is ever moved aside
        refuse_foreign_output(self.output, "spark")
        kinds = ((SCORED_FILE, scored, self.output), (REJECTS_FILE, rejects, rejects_path(self.output)))
        ready = [(self._gather(written, name, schema, scored.metadata), target) for name, schema, target in kinds]
        parked: list[tuple[Path, Path]] = []
        placed: list[Path] = []
        try:
            for i, (_, target) in enumerate(ready):
                if target.exists() or target.is_symlink():  # a folder, a file or a link: moved as it is
                    self._move(target, self.folder / f"_old-{i}")
                    parked.append((target, self.folder / f"_old-{i}"))
            for folder, target in ready:
                self._move(folder, target)
                placed.append(target)
        except BaseException as error:
            self._put_back(placed, parked, error)
            raise
        self.discard()
        return sum(w.rows for w in written), sum(w.rejected for w in written)

    def _put_back(self, placed: list[Path], parked: list[tuple[Path, Path]], error: BaseException) -> None:
        """Undo a commit that failed half-way: the new folders out, the older outputs back. Every move is
        tried; one that fails leaves the older output in the staging folder, which is then kept."""
        moves = [(target, self.folder / f"_failed-{i}") for i, target in enumerate(placed)]
        moves += [(old, target) for target, old in parked]
        for source, destination in moves:
            try:
                os.replace(source, destination)
            except OSError as exc:
                self.stranded = True
                error.add_note(f"could not move {source} back to {destination} ({exc})")
        if self.stranded:
            error.add_note(f"the older output is kept in {self.folder}")

    def _gather(
        self, written: list[Written], name: str, schema: pa.Schema, metadata: dict[bytes, bytes] | None
    ) -> Path:
        """A new folder of the counted attempts' ``name`` files, ``part-<partition>.parquet``, the marker
        (with the scored files' ``metadata``) and ``_SUCCESS``."""
        ready = self.folder / f"_{name}"
        ready.mkdir()
        for w in sorted(written, key=lambda w: w.partition):
            part = self.folder / f"part-{w.partition:05d}-{w.attempt}" / name
            if part.exists():
                os.replace(part, ready / f"part-{w.partition:05d}.parquet")
        if not any(ready.iterdir()):
            pq.write_table(schema.empty_table(), ready / "part-00000.parquet")
        write_marker(ready, "scored" if name == SCORED_FILE else "rejects", metadata)
        (ready / "_SUCCESS").touch()
        return ready

    def _move(self, source: Path, destination: Path) -> None:
        os.replace(source, destination)

    def discard(self) -> None:
        """Delete the staging folder: uncounted attempts, an older output, or a failed job's files. Tried
        again for a moment: after a failed job Spark stops the other tasks of the stage asynchronously,
        and one may still be writing into its folder."""
        if self.stranded:
            log.warning("the staging folder %s holds the older output: kept", self.folder)
            return
        for wait in (0.0, 0.5, 2.0):
            time.sleep(wait)
            shutil.rmtree(self.folder, ignore_errors=True)
            if not self.folder.exists():
                return
        log.warning("could not delete the staging folder %s; it can be deleted by hand", self.folder)
