"""The public registry reads (``/v1/registry``, a version's validation report) kept a few seconds.

Those routes need no token, and each of their answers costs registry calls in a worker thread. A
flood of them must not fill the threadpool that batches and admin calls share: an answer (an error
answer too) is kept ``ttl`` seconds, one read per key runs at a time, and every other caller waits
for it on the event loop, holding no thread. An alias move made by this process clears the cache
(:meth:`ReadCache.clear`); a move made elsewhere shows within ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from serving.errors import ServiceError


@dataclass(frozen=True)
class _Entry:
    expires: float
    value: Any
    error: ServiceError | None

    def answer(self) -> Any:
        if self.error is not None:
            raise copy.copy(self.error)  # each request raises its own copy
        return self.value


class ReadCache:
    """Answers of blocking reads, by key, for ``ttl`` seconds; used from the event loop only."""

    def __init__(self, ttl: float = 2.0, *, max_keys: int = 256) -> None:
        self.ttl = ttl
        self._max_keys = max_keys
        self._entries: dict[Hashable, _Entry] = {}
        self._pending: dict[Hashable, asyncio.Task[_Entry]] = {}
        self._generation = 0

    async def get(self, key: Hashable, read: Callable[[], Any]) -> Any:
        """``read()``'s answer (run in the threadpool), or the one kept for ``key`` if still fresh;
        a :class:`ServiceError` it raised is kept and raised again like an answer."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires > time.monotonic():
            return entry.answer()
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fill(key, read, self._generation))
            self._pending[key] = pending
        # shielded: a caller that goes away does not cancel the read the others wait for
        return (await asyncio.shield(pending)).answer()

    def clear(self) -> None:
        """Forget every answer; reads under way when this is called are not kept."""
        self._generation += 1
        self._entries.clear()
        self._pending.clear()

    async def _fill(self, key: Hashable, read: Callable[[], Any], generation: int) -> _Entry:
        try:
            try:
                value, error = await run_in_threadpool(read), None
            except ServiceError as exc:
                value, error = None, exc
            entry = _Entry(expires=time.monotonic() + self.ttl, value=value, error=error)
            if generation == self._generation:
                self._make_room()
                self._entries[key] = entry
            return entry
        finally:
            if self._pending.get(key) is asyncio.current_task():
                del self._pending[key]

    def _make_room(self) -> None:
        if len(self._entries) < self._max_keys:
            return
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if e.expires <= now] or [next(iter(self._entries))]:
            del self._entries[key]
