"""Where the fsync child's answers are read: on the service's event loop once it is bound, else by a thread.

Bound (:meth:`Answers.bind`, called on the loop), the child's socket is watched
with ``add_reader``: an answer is read and its waiting requests settled in the
same loop iteration, with no thread to wake and no GIL to hand over. Unbound
(scripts, tests, before the service binds it), the writer's thread polls the
socket. Either way the reading and the settling happen under the writer's lock,
so answers are applied in the order the child sent them. A child found gone is
replaced (:meth:`Syncer.replace`) on the loop that watched it, which then
watches the new one's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable

from serving.prediction_log.commits import Commits
from serving.prediction_log.syncer import Answer, Syncer, SyncerStartError

log = logging.getLogger(__name__)


class Answers:
    """Reads and settles the fsync child's answers; ``settle`` applies them and returns the last ticket on disk."""

    def __init__(
        self,
        lock: threading.RLock,
        syncer: Syncer,
        *,
        settle: Callable[[list[Answer]], int],
        commits: Commits,
        problem: Callable[[str], None],
    ) -> None:
        self._lock = lock
        self._syncer = syncer
        self._settle = settle
        self._commits = commits
        self._problem = problem
        self.loop: asyncio.AbstractEventLoop | None = None  # the bound loop
        self.loop_thread: int | None = None
        self._watched = -1  # the descriptor that loop watches
        self.closed = False  # the writer has closed: no child is started any more

    def on_loop(self) -> bool:
        """Whether the caller runs on the bound loop (and it is open)."""
        loop = self.loop
        return threading.get_ident() == self.loop_thread and loop is not None and not loop.is_closed()

    def bind(self) -> None:
        """From now on the answers are read on the running loop (call it there)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.loop, self.loop_thread = loop, threading.get_ident()
            self._watch()

    def unbind(self) -> None:
        """Stop reading on the bound loop (on that loop; waits for it when called elsewhere)."""
        with self._lock:
            loop, watched = self.loop, self._watched
        if loop is None:
            return
        done = threading.Event()

        def unwatch() -> None:
            with self._lock:
                if not loop.is_closed():
                    loop.remove_reader(self._watched if self._watched >= 0 else watched)
                self._watched, self.loop, self.loop_thread = -1, None, None
            done.set()

        if self.on_loop():
            unwatch()
            return
        try:
            loop.call_soon_threadsafe(unwatch)
        except RuntimeError:  # the loop is closed: nothing watches any more
            unwatch()
            return
        if not done.wait(2.0):  # the loop has stopped: its reader cannot run any more
            with self._lock:
                self._watched, self.loop, self.loop_thread = -1, None, None

    def read(self) -> None:
        """Read what has arrived and settle it; replace a child found gone."""
        with self._lock:
            upto = self._settle(self._syncer.answers())
            dead = self._syncer.dead
        if upto:
            self._commits.confirm(upto)
        if dead:
            self.revive()

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for answers, then read them (the writer's thread, close)."""
        descriptor = self._syncer.fileno()
        if descriptor >= 0 and not self._syncer.dead:
            poller = select.poll()
            poller.register(descriptor, select.POLLIN)
            poller.poll(timeout * 1000)
        else:
            time.sleep(timeout)
        self.read()

    def revive(self) -> None:
        """Replace a child found gone, asking the new one again; on the bound loop, watch its socket."""
        with self._lock:
            loop = self.loop
        if loop is not None and not self.on_loop():
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: the writer is closing
                loop.call_soon_threadsafe(self.revive)
            return
        with self._lock:
            if not self._syncer.dead or self.closed:
                return
            if self.loop is not None and self._watched >= 0:
                self.loop.remove_reader(self._watched)  # before its socket closes
                self._watched = -1
            try:
                self._syncer.replace()
            except SyncerStartError as exc:
                self._problem(str(exc))  # the writer's thread tries again each second
                return
            log.warning("prediction log: the fsync process was gone; a new one took over")
            if self.loop is not None:
                self._watch()

    def _watch(self) -> None:
        assert self.loop is not None
        if self._watched >= 0:
            self.loop.remove_reader(self._watched)
            self._watched = -1
        if not self._syncer.dead and self._syncer.fileno() >= 0:
            self._watched = self._syncer.fileno()
            self.loop.add_reader(self._watched, self.read)
