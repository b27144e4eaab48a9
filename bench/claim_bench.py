"""The event loop's cost of a made request id: a synchronous claim against a grouped record, in one run.

``python -m bench.claim_bench [--ids 10000] [--rounds 3] [--in-flight 64]``. One ledger
(``credit_risk/audit/request_ids.py``) in a throw-away folder. Each round times, on the calling
thread (wall clock and that thread's CPU), ``claim`` of fresh uuid4 ids one after another (what
the service did on the loop for every request), then the same count of ids through ``record``
and ``await wait_recorded`` on an event loop with ``--in-flight`` requests at a time (what the
service does now; the flusher thread's inserts are not the loop's time). Reports microseconds
per id and how many ids a flush recorded on average.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from credit_risk.audit.request_ids import RequestIdLedger

_DIGEST = b"d" * 16


Figures = tuple[float, float, float]  # microseconds an id: wall, the calling thread's CPU, the process's CPU


def _clocks() -> Figures:
    return time.perf_counter(), time.thread_time(), time.process_time()


def _per_id(start: Figures, count: int) -> Figures:
    now = _clocks()
    wall, thread, process = ((b - a) / count * 1e6 for a, b in zip(start, now, strict=True))
    return wall, thread, process


def synchronous(ledger: RequestIdLedger, count: int) -> Figures:
    """Claims one after another, as the loop made them for every request."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    start = _clocks()
    for request_id in ids:
        ledger.claim(request_id, _DIGEST, client=False)
    return _per_id(start, count)


async def _grouped(ledger: RequestIdLedger | None, count: int, in_flight: int) -> Figures:
    """``in_flight`` requests at a time each record an id and wait for it (``None``: they only wait
    for an already settled future: the benchmark's own coroutines, to subtract)."""
    ids = [uuid.uuid4().hex for _ in range(count)]

    async def one(request_id: str) -> None:
        if ledger is None:
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            await future
        else:
            await ledger.wait_recorded(ledger.record(request_id, _DIGEST))

    start = _clocks()
    for first in range(0, count, in_flight):
        await asyncio.gather(*(one(i) for i in ids[first : first + in_flight]))
    return _per_id(start, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=10000, help="ids per round and way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=64, help="requests waiting at a time (grouped way)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="claim-bench-") as name:
        ledger = RequestIdLedger(Path(name) / "request-ids.sqlite", retention_days=30)
        try:
            sync_loop, grouped_loop, sync_process, grouped_process = [], [], [], []
            for round_index in range(args.rounds):
                wall, loop, process = synchronous(ledger, args.ids)
                flushes = ledger.flushes
                g_wall, g_loop, g_process = asyncio.run(_grouped(ledger, args.ids, args.in_flight))
                per_flush = args.ids / max(1, ledger.flushes - flushes)
                _, own_loop, own_process = asyncio.run(_grouped(None, args.ids, args.in_flight))
                g_loop, g_process = g_loop - own_loop, g_process - own_process
                sync_loop.append(loop)
                sync_process.append(process)
                grouped_loop.append(g_loop)
                grouped_process.append(g_process)
                print(
                    f"round {round_index + 1}: synchronous claim {wall:.1f} us wall, {loop:.1f} us loop CPU, "
                    f"{process:.1f} us process CPU an id; grouped record {g_wall:.1f} us wall, {g_loop:.1f} us "
                    f"loop CPU, {g_process:.1f} us process CPU an id ({per_flush:.1f} ids a flush; the benchmark's "
                    f"own coroutines, {own_loop:.1f} us, subtracted)"
                )
        finally:
            ledger.close()
    print(
        f"median an id: loop CPU synchronous {statistics.median(sync_loop):.1f} us, grouped "
        f"{statistics.median(grouped_loop):.1f} us; process CPU synchronous {statistics.median(sync_process):.1f} us, "
        f"grouped {statistics.median(grouped_process):.1f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
