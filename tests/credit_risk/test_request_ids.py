"""The request id ledger's grouped records of the ids the service made, on real SQLite files.

A made id is queued (``record``) and written by the ledger's flusher thread with the others
pending, in one transaction; ``wait_recorded`` returns once it is in the file. Each test reads
the file with a fresh ``sqlite3`` connection, as another worker would.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from credit_risk.audit.request_ids import Claim, RequestIdConflictError, RequestIdLedger, RequestIdRecordError

pytestmark = pytest.mark.code

DIGEST = b"d" * 16


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[RequestIdLedger]:
    opened = RequestIdLedger(tmp_path / "request-ids.sqlite", retention_days=30)
    yield opened
    opened.close()


def in_file(path: Path) -> dict[str, int]:
    """Every id in the ledger's file and whether a client chose it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("select request_id, client from ids"))


@contextlib.contextmanager
def file_locked(path: Path) -> Iterator[None]:
    """Another connection holds the file's write lock: the flusher's next group waits for it."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("begin immediate")
        try:
            yield
        finally:
            db.execute("commit")


def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_a_made_id_is_in_the_file_once_its_wait_returns(ledger: RequestIdLedger) -> None:
    async def record() -> None:
        await ledger.wait_recorded(ledger.record("made-1", DIGEST))

    asyncio.run(record())
    assert in_file(ledger.path) == {"made-1": 0}


def test_made_ids_waiting_together_are_written_in_fewer_transactions_than_ids(ledger: RequestIdLedger) -> None:
    ids = [f"made-{i}" for i in range(200)]

    async def record(request_id: str) -> None:
        await ledger.wait_recorded(ledger.record(request_id, DIGEST))

    async def all_of_them() -> None:
        await asyncio.gather(*(record(i) for i in ids))

    asyncio.run(all_of_them())
    assert set(in_file(ledger.path)) == set(ids)
    assert ledger.flushed == 200 and 1 <= ledger.flushes < 200, (ledger.flushes, ledger.flushed)


def test_a_client_reusing_a_recorded_made_id_is_refused(ledger: RequestIdLedger) -> None:
    async def record() -> None:
        await ledger.wait_recorded(ledger.record("made-2", DIGEST))

    asyncio.run(record())
    with pytest.raises(RequestIdConflictError) as refused:
        ledger.claim("made-2", DIGEST, client=True)
    assert refused.value.reason == "reused"


def test_releasing_a_pending_made_id_drops_it_before_it_is_written(ledger: RequestIdLedger) -> None:
    with file_locked(ledger.path):
        ledger.record("first", DIGEST)
        until(lambda: ledger.writing == 1, "the flusher took the first id and waits for the file")
        dropped = ledger.record("dropped", DIGEST)  # pending: the flusher is waiting for the file
        assert ledger.pending == 1
        ledger.release(Claim("dropped", (), client=False, ticket=dropped))
        assert ledger.pending == 0, "released from the pending group, without waiting for the file"

    async def record_another() -> None:
        await ledger.wait_recorded(ledger.record("later", DIGEST))

    asyncio.run(record_another())
    assert set(in_file(ledger.path)) == {"first", "later"}


def test_releasing_a_written_made_id_deletes_it(ledger: RequestIdLedger) -> None:
    async def record() -> int:
        ticket = ledger.record("written", DIGEST)
        await ledger.wait_recorded(ticket)
        return ticket

    ticket = asyncio.run(record())
    ledger.release(Claim("written", (), client=False, ticket=ticket))
    assert in_file(ledger.path) == {}


def test_a_failed_write_refuses_its_waiting_ids(ledger: RequestIdLedger) -> None:
    ledger.claim("client-id", DIGEST, client=True)  # the table exists
    with contextlib.closing(sqlite3.connect(ledger.path, isolation_level=None)) as other:
        other.execute("drop table ids")  # the flusher's insert fails, as on a full disk

    async def record() -> None:
        await ledger.wait_recorded(ledger.record("made-3", DIGEST))

    with pytest.raises(RequestIdRecordError, match="request id ledger write failed: no such table"):
        asyncio.run(record())
    assert ledger.pending == ledger.writing == 0


def test_close_writes_every_pending_made_id(tmp_path: Path) -> None:
    ledger = RequestIdLedger(tmp_path / "request-ids.sqlite", retention_days=30)
    ids = [f"made-{i}" for i in range(50)]
    for request_id in ids:  # no event loop: recorded from a plain thread, as a job would
        ledger.record(request_id, DIGEST)
    ledger.close()
    assert set(in_file(ledger.path)) == set(ids)


def test_a_closed_ledger_refuses_to_record(tmp_path: Path) -> None:
    ledger = RequestIdLedger(tmp_path / "request-ids.sqlite", retention_days=30)
    ledger.close()
    with pytest.raises(RequestIdRecordError, match="closed"):
        ledger.record("late", DIGEST)


def test_a_made_id_claimed_without_an_event_loop_is_written_at_once(ledger: RequestIdLedger) -> None:
    assert ledger.claim("job-id", DIGEST, client=False) is None
    assert in_file(ledger.path) == {"job-id": 0}
