"""Deadlines for the hot path's awaits at the cost of a dict entry each, checked by one timer per loop.

``asyncio.timeout`` and ``asyncio.wait_for`` each arm and cancel a timer per
await (about 4 and 3 us here, timed in-process on uvloop), twice per
scored request (the body's read, the log's write). A request here instead
registers its task and deadline; one callback, every :data:`TICK` seconds
while anything is watched, cancels the tasks past theirs, and the waiting
code sees :class:`TimeoutError`, as with ``asyncio.timeout``. A deadline is
thus kept to within :data:`TICK` (the deadlines it keeps are seconds long).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

TICK = 0.1  # seconds between checks while some await is watched


class _Watch:
    """One watched await: ``with watch:`` raises :class:`TimeoutError` when its deadline cancelled it."""

    __slots__ = ("_task", "_until", "_watched", "expired")

    def __init__(self, watched: dict[asyncio.Task[object], _Watch], task: asyncio.Task[object], until: float) -> None:
        self._watched = watched
        self._task = task
        self._until = until
        self.expired = False

    def __enter__(self) -> _Watch:
        self._watched[self._task] = self
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._watched.pop(self._task, None)
        if self.expired and kind is asyncio.CancelledError and self._task.uncancel() == 0:
            raise TimeoutError from exc  # our cancellation, and nobody else's is pending: a timeout


class Deadlines:
    """The watched awaits of one event loop (a service process has one)."""

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[asyncio.Task[object], _Watch] = {}
        self._timer: asyncio.TimerHandle | None = None

    def within(self, seconds: float) -> _Watch:
        """``with deadlines.within(s): await ...``: :class:`TimeoutError` once ``s`` seconds have passed."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's client, a restarted server): start afresh there
            self._loop, self._watched, self._timer = loop, {}, None
        task = asyncio.current_task(loop)
        assert task is not None, "a deadline needs a task"
        if self._timer is None:
            self._timer = loop.call_later(self._tick, self._check)
        return _Watch(self._watched, task, time.monotonic() + seconds)  # type: ignore[arg-type]

    def _check(self) -> None:
        now = time.monotonic()
        for watch in [w for w in self._watched.values() if w._until <= now and not w.expired]:
            watch.expired = True
            watch._task.cancel()
        self._timer = self._loop.call_later(self._tick, self._check) if self._watched and self._loop else None


DEADLINES = Deadlines()  # this process's; each call follows the running loop
