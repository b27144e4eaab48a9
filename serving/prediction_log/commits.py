"""Which tickets are on disk, which were refused, and the requests waiting for them.

A request awaits one asyncio future. The answers of the fsync process settle
every waiter of a group: directly when they are read on the waiters' own event
loop (the service's), else with one ``loop.call_soon_threadsafe`` per loop; the
loop never waits on a lock held across disk I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

_KEPT_FAILURES = 256

Waiter = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Commits:
    """Tickets are increasing integers; groups are confirmed or refused in ticket order."""

    def __init__(self, refused: type[Exception]) -> None:
        self._refused = refused
        self._lock = threading.Lock()
        self._durable = 0  # every ticket up to this one is on disk, unless in a refused range
        self._failed: list[tuple[int, int, str]] = []
        self._waiters: list[Waiter] = []

    def future_for(self, ticket: int) -> asyncio.Future[None] | None:
        """None when the ticket is already on disk; a future to await otherwise; raises when refused."""
        with self._lock:
            self._raise_if_refused(ticket)
            if ticket <= self._durable:
                return None
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((ticket, loop, future))
            return future

    def confirm(self, upto: int) -> None:
        """Every ticket up to ``upto`` is on disk: wake their requests."""
        with self._lock:
            self._durable = max(self._durable, upto)  # two readers may confirm out of order
            settled = [w for w in self._waiters if w[0] <= upto]
            self._waiters = [w for w in self._waiters if w[0] > upto]
        _wake(settled, None)

    def refuse(self, low: int, high: int, reason: str) -> None:
        """Tickets ``low``..``high`` were not written: their requests fail."""
        with self._lock:
            self._failed = [*self._failed[-_KEPT_FAILURES:], (low, high, reason)]
            settled = [w for w in self._waiters if low <= w[0] <= high]
            self._waiters = [w for w in self._waiters if not low <= w[0] <= high]
        _wake(settled, self._refused(f"prediction log write failed: {reason}"))

    def _raise_if_refused(self, ticket: int) -> None:
        for low, high, reason in self._failed:
            if low <= ticket <= high:
                raise self._refused(f"prediction log write failed: {reason}")


def _wake(waiters: list[Waiter], error: Exception | None) -> None:
    """Settle the waiters: at once on this thread's own loop, through ``call_soon_threadsafe`` on others."""
    if not waiters:
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, loop, future in waiters:
        by_loop.setdefault(loop, []).append(future)
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    for loop, futures in by_loop.items():
        if loop is here:
            _resolve(futures, error)
            continue
        with contextlib.suppress(RuntimeError):  # a loop that has closed meanwhile
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: Sequence[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if not future.done():  # a request that timed out has cancelled its future
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
