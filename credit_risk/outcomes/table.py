"""The outcomes table: append-only Parquet files under ``logs/outcomes/``, one per load.

Every load that changes something writes one file atomically (temporary
dot-name, fsync, rename, fsync of the folder) under an exclusive lock, so two
loaders never interleave. A row identical to the current outcome of its
decision is not written again (loading the same file twice adds nothing); a
row that differs is a correction: it is appended and becomes the current
outcome, and the earlier row stays in the table as history.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from credit_risk.private_files import atomic_write, private_dir, private_open

TABLE_SCHEMA_VERSION = 1
_PREFIX = "part-"
_LOCK = ".lock"

SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("applicant_id", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),  # the target's own terms (event / non-event)
        pa.field("label", pa.int8(), nullable=False),  # 1 = the event (default)
        pa.field("observed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("loaded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("load_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),  # the file's name, or "api"
        pa.field("source_row", pa.int64()),  # 1-based data row in the source
    ],
    metadata={"outcomes_table_version": str(TABLE_SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class StoreResult:
    """What one load changed: new outcomes, corrections, rows identical to the current ones."""

    added: int
    corrected: int
    unchanged: int
    file: str | None  # the file written, None when nothing changed
    load_id: str

    @property
    def stored(self) -> int:
        return self.added + self.corrected


class OutcomeTable:
    """Read and append to one outcomes folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob(f"{_PREFIX}*.parquet") if p.is_file())

    def history(self, columns: list[str] | None = None) -> pa.Table:
        """Every row ever stored, corrections and what they superseded."""
        files = self.files()
        if not files:
            return SCHEMA.empty_table() if columns is None else SCHEMA.empty_table().select(columns)
        return ds.dataset([str(f) for f in files], schema=SCHEMA, format="parquet").to_table(columns=columns)

    def current(self) -> pa.Table:
        """One row per decision: its latest outcome (the last load wins)."""
        return latest_per_request(self.history())

    def digest(self) -> str:
        """A digest of the table's snapshot: the files are immutable, so their names and bytes say it all."""
        digest = hashlib.sha256()
        for path in self.files():
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        private_dir(self.directory)
        with private_open(self.directory / _LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def store(self, rows: pa.Table, *, source: str, now: datetime | None = None) -> StoreResult:
        """Append the rows that change something; ``rows`` has request_id, applicant_id, outcome,
        label, observed_at, source_row (one row per request_id, already checked)."""
        load_id = uuid.uuid4().hex
        loaded_at = now or datetime.now(UTC)
        with self._locked():
            current = self.current().select(["request_id", "outcome", "observed_at"])
            fresh, corrected, unchanged = _changes(rows, current)
            changed = pa.concat_tables([fresh, corrected]) if fresh.num_rows or corrected.num_rows else None
            written = None
            if changed is not None:
                n = changed.num_rows
                full = pa.table(
                    {
                        "request_id": changed["request_id"],
                        "applicant_id": changed["applicant_id"],
                        "outcome": changed["outcome"],
                        "label": changed["label"],
                        "observed_at": changed["observed_at"],
                        "loaded_at": pa.array([loaded_at] * n, pa.timestamp("us", tz="UTC")),
                        "load_id": pa.array([load_id] * n, pa.string()),
                        "source": pa.array([source] * n, pa.string()),
                        "source_row": changed["source_row"],
                    },
                    schema=SCHEMA,
                )
                written = self._write(full, loaded_at, load_id).name
        return StoreResult(fresh.num_rows, corrected.num_rows, unchanged, written, load_id)

    def _write(self, table: pa.Table, loaded_at: datetime, load_id: str) -> Path:
        # the name sorts by load time, so the latest load is also the last file
        name = f"{_PREFIX}{loaded_at.strftime('%Y%m%dT%H%M%S%f')}-{load_id[:12]}.parquet"
        return atomic_write(self.directory / name, lambda handle: pq.write_table(table, handle, compression="zstd"))


def latest_per_request(history: pa.Table) -> pa.Table:
    """Keep, for each request_id, the row of the latest load (loaded_at, then load_id)."""
    if history.num_rows == 0 or pc.count_distinct(history["request_id"]).as_py() == history.num_rows:
        return history  # no decision has two outcomes: nothing superseded
    order = history.sort_by([("request_id", "ascending"), ("loaded_at", "descending"), ("load_id", "descending")])
    ids = order["request_id"].combine_chunks()
    first = pc.not_equal(ids[1:], ids[:-1]) if len(ids) > 1 else pa.array([], pa.bool_())
    keep = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return order.filter(keep)


def _changes(rows: pa.Table, current: pa.Table) -> tuple[pa.Table, pa.Table, int]:
    """Split incoming rows into new ones, corrections, and a count of rows equal to the current outcome."""
    if current.num_rows == 0:
        return rows, rows.slice(0, 0), 0
    indexed = rows.append_column("_i", pa.array(range(rows.num_rows), pa.int64()))
    joined = indexed.select(["_i", "request_id", "outcome", "observed_at"]).join(
        current.rename_columns(["request_id", "cur_outcome", "cur_observed_at"]),
        keys="request_id",
        join_type="left outer",
    )
    known = pc.is_valid(joined["cur_outcome"])
    same = pc.and_(
        known,
        pc.and_(
            pc.equal(joined["outcome"], joined["cur_outcome"]),
            pc.equal(joined["observed_at"], joined["cur_observed_at"]),
        ),
    ).fill_null(False)
    fresh_idx = pc.filter(joined["_i"], pc.invert(known))
    corrected_idx = pc.filter(joined["_i"], pc.and_(known, pc.invert(same)))
    return rows.take(_sorted(fresh_idx)), rows.take(_sorted(corrected_idx)), int(pc.sum(same).as_py() or 0)


def _sorted(indices: pa.Array | pa.ChunkedArray) -> pa.Array:
    # a join does not keep row order: take the rows in their source order
    return pc.take(indices, pc.sort_indices(indices))
