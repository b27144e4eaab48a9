"""The write-ahead file's ``fdatasync`` calls, in a child process, off the service's GIL.

The service appends each group of records to its segment itself (a write
into the page cache: microseconds) and asks this child to make it durable.
The child holds a copy of the segment's descriptor (handed over a Unix socket
with ``SCM_RIGHTS``), calls ``fdatasync`` and answers on the same socket,
which the service's event loop watches (``add_reader``): no thread of the
service's process waits on the disk, nor takes the GIL from the event loop to
wake it (the thread that did cost the loop about 60 us of CPU a request,
``bench/http_bench.py``).

Requests are answered in order. Every request that arrived while the last
``fdatasync`` ran is served by one ``fdatasync`` per segment (group commit),
after ``group_commit_ms`` more under load, as PostgreSQL's ``commit_delay``.
The child ends when its socket closes (the service ended, whatever the
signal); the service starts a new one when it finds this one gone and asks
again for everything unanswered: an ``fdatasync`` may be repeated, never
skipped.

Wire format (``SOCK_SEQPACKET``: one message per request, order kept):
service -> child ``<Bqq`` (operation, request id, segment number), ``OPEN`` and
``SYNC_DIR`` carrying the descriptor; child -> service, one message per batch
(so a failure is never separated from the batch it failed in): ``<qiI`` (the
last request id it served, the ``SYNC`` fdatasyncs made, the number of failed
requests), then ``<qi`` (request id, errno) for each failed one.
"""

from __future__ import annotations

import array
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

OPEN, SYNC, CLOSE, SYNC_DIR = 1, 2, 3, 4
_REQUEST = struct.Struct("<Bqq")
_ANSWER = struct.Struct("<qiI")  # last request id served, SYNC fdatasyncs, failed requests that follow
_FAILED = struct.Struct("<qi")  # request id, errno
_ANCILLARY = socket.CMSG_SPACE(array.array("i").itemsize)  # room for one descriptor
_BATCH = 4096  # requests read before they are served
_ANSWER_MAX = _ANSWER.size + _BATCH * _FAILED.size


class SyncerStartError(OSError):
    """The child could not be started (the service cannot make records durable)."""


@dataclass(frozen=True)
class Answer:
    """One request served: ``error`` is 0 or the errno of its ``fdatasync``; ``token`` is the caller's."""

    op: int
    number: int
    token: Any
    error: int


class Syncer:
    """The service's side: requests in, answers out, one child (replaced, and asked again, when it is gone).

    Not thread-safe: the prediction log writer calls it under its lock. The descriptors handed over are
    the caller's: it keeps them open until their ``CLOSE`` (or ``SYNC_DIR``) is answered, so that a new
    child can be handed them again.
    """

    def __init__(self, *, group_commit_ms: float = 0.0) -> None:
        self._group_commit_ms = group_commit_ms
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._next = 0
        self._unanswered: dict[int, tuple[int, int, int | None, Any]] = {}  # id -> (op, number, descriptor, token)
        self._open: dict[int, int] = {}  # segment number -> descriptor, until its CLOSE is answered
        self._backlog: list[int] = []  # ids not sent yet (the socket was full), in order
        self.dead = False  # the child was found gone: replace() it
        self.fsyncs = 0
        self.restarts = 0

    # ------------------------------------------------------------ requests

    def start(self) -> None:
        """Start the child; :class:`SyncerStartError` when it cannot."""
        self._spawn()

    def fileno(self) -> int:
        """The socket the answers arrive on (for ``add_reader`` or ``poll``); -1 while there is none."""
        return self._socket.fileno() if self._socket is not None else -1

    @property
    def waiting(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._unanswered)

    def request(self, op: int, number: int, *, descriptor: int | None = None, token: Any = None) -> None:
        """Ask for ``op`` on segment ``number`` (``OPEN`` and ``SYNC_DIR`` hand over ``descriptor``); never
        waits nor raises: what the socket cannot take now is sent as answers make room, and a child
        found gone is marked :attr:`dead` (:meth:`replace` asks the next one again)."""
        if op == SYNC and self._backlog:
            last = self._backlog[-1]
            if self._unanswered[last][:2] == (SYNC, number):  # not sent yet: this one covers it
                self._backlog.pop()
                del self._unanswered[last]
        self._next += 1
        self._unanswered[self._next] = (op, number, descriptor, token)
        if op == OPEN and descriptor is not None:
            self._open[number] = descriptor
        self._backlog.append(self._next)
        self._send_backlog()

    def _send_backlog(self) -> None:
        while self._backlog and not self.dead and self._socket is not None:
            rid = self._backlog[0]
            op, number, descriptor, _ = self._unanswered[rid]
            ancillary = []
            if descriptor is not None:  # sendmsg, not socket.send_fds: Python 3.11's drops its flags
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [descriptor]))]
            try:
                self._socket.sendmsg([_REQUEST.pack(op, rid, number)], ancillary, socket.MSG_DONTWAIT)
            except BlockingIOError:  # the child has hundreds unread: the rest go as its answers come
                return
            except OSError:
                self.dead = True
                return
            self._backlog.pop(0)

    # ------------------------------------------------------------ answers

    def answers(self) -> list[Answer]:
        """The answers that have arrived, in request order (never waits). A child found gone is marked
        :attr:`dead`: the owner stops watching :meth:`fileno`, then calls :meth:`replace`."""
        served: list[Answer] = []
        self._send_backlog()
        while self._socket is not None and not self.dead:
            try:
                data = self._socket.recv(_ANSWER_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if len(data) < _ANSWER.size:  # EOF: the child ended (it never closes its end while we live)
                self.dead = True
                break
            last, fsyncs, count = _ANSWER.unpack_from(data)
            failed = dict(_FAILED.iter_unpack(data[_ANSWER.size : _ANSWER.size + count * _FAILED.size]))
            self.fsyncs += fsyncs
            for done in [r for r in self._unanswered if r <= last]:
                op, number, _, token = self._unanswered.pop(done)
                served.append(Answer(op, number, token, failed.get(done, 0)))
                if op == CLOSE:
                    self._open.pop(number, None)
        self._send_backlog()
        return served

    def replace(self) -> None:
        """A new child, sent every open segment and every unanswered request again, in order; raises
        :class:`SyncerStartError` (and stays dead, nothing lost) when it cannot start."""
        self._stop(kill=True)
        self._spawn()
        self.dead = False
        self.restarts += 1
        pending = sorted(self._unanswered.items())
        self._unanswered.clear()
        self._backlog.clear()
        opened = {number for _, (op, number, _, _) in pending if op == OPEN}
        for number, descriptor in sorted(self._open.items()):
            if number not in opened:
                self.request(OPEN, number, descriptor=descriptor)
        for _, (op, number, descriptor, token) in pending:
            self.request(op, number, descriptor=descriptor, token=token)

    # ------------------------------------------------------------ the child

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)  # this side never waits: a full socket keeps requests in the backlog
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, str(theirs.fileno()), str(self._group_commit_ms)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C or a signal to the service's group is the service's
            )
        except OSError as exc:
            ours.close()
            raise SyncerStartError(f"the fsync process could not start: {exc}") from exc
        finally:
            theirs.close()
        self._socket = ours

    def close(self, timeout: float = 10.0) -> None:
        """End the child (it finishes what it was doing: its socket closes). The descriptors handed over
        stay the caller's to close."""
        self._stop(timeout=timeout)

    def _stop(self, *, timeout: float = 10.0, kill: bool = False) -> None:
        sock, self._socket = self._socket, None
        process, self._process = self._process, None
        if sock is not None:
            sock.close()
        if process is not None:
            if kill:
                process.kill()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None


# ---------------------------------------------------------------- the child's side


def _serve(sock: socket.socket, group_commit_ms: float) -> None:
    """Read what has arrived, serve it with one fdatasync per segment, answer; until the socket closes."""
    descriptors: dict[int, int] = {}
    busy = False
    while True:
        batch = _receive(sock, wait=True)
        if batch is None:
            return
        if busy and group_commit_ms:
            time.sleep(group_commit_ms / 1000.0)
        while len(batch) < _BATCH:
            more = _receive(sock, wait=False)
            if not more:
                break
            batch += more
        busy = len(batch) > 1
        failed, fsyncs = _serve_batch(batch, descriptors)
        answer = _ANSWER.pack(batch[-1][1], fsyncs, len(failed)) + b"".join(_FAILED.pack(*f) for f in failed)
        try:
            sock.send(answer)
        except OSError:  # the service closed its end (it ended, or replaced this process)
            return


def _receive(sock: socket.socket, *, wait: bool) -> list[tuple[int, int, int, int | None]] | None:
    """One request (op, id, segment, descriptor) as a list; [] when none waits, None when the socket closed."""
    try:  # recvmsg, not socket.recv_fds: Python 3.11's drops its flags (MSG_DONTWAIT)
        data, ancillary, _, _ = sock.recvmsg(_REQUEST.size, _ANCILLARY, 0 if wait else socket.MSG_DONTWAIT)
    except BlockingIOError:
        return []
    if not data:
        return None
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    op, rid, number = _REQUEST.unpack(data)
    return [(op, rid, number, fds[0] if fds else None)]  # a descriptor lost on the way: EBADF when used


def _serve_batch(
    batch: list[tuple[int, int, int, int | None]], descriptors: dict[int, int]
) -> tuple[list[tuple[int, int]], int]:
    """(failed request id, errno) pairs and the SYNC fdatasyncs made; a SYNC that a later SYNC or CLOSE of its
    segment in the same batch covers is answered by that later call (its failure fails both)."""
    last: dict[int, int] = {}
    for index, (op, _, number, _) in enumerate(batch):
        if op in (SYNC, CLOSE):
            last[number] = index
    failed: list[tuple[int, int]] = []
    covered: dict[int, list[int]] = {}
    syncs: set[int] = set()  # segments with a SYNC request among those covered
    fsyncs = 0
    for index, (op, rid, number, descriptor) in enumerate(batch):
        error = 0
        if op == OPEN and descriptor is not None:
            old = descriptors.pop(number, None)
            if old is not None:
                os.close(old)
            descriptors[number] = descriptor
        elif op == OPEN:
            error = errno.EBADF  # its descriptor did not arrive (the child's limit): its SYNCs fail too
        elif op == SYNC_DIR:
            error = _call(os.fsync, descriptor) if descriptor is not None else errno.EBADF
            if descriptor is not None:
                os.close(descriptor)
        elif op in (SYNC, CLOSE):
            covered.setdefault(number, []).append(rid)
            if op == SYNC:
                syncs.add(number)
            if last[number] != index:
                continue
            target = descriptors.get(number)
            error = _call(os.fdatasync, target) if target is not None else errno.EBADF  # never opened here
            fsyncs += number in syncs  # the fdatasyncs that made records durable (not a CLOSE's alone)
            syncs.discard(number)
            if op == CLOSE and target is not None:
                os.close(descriptors.pop(number))
            if error:
                failed += [(r, error) for r in covered[number]]
            covered.pop(number)
            continue
        if error:
            failed.append((rid, error))
    return failed, fsyncs


def _call(func: Any, descriptor: int) -> int:
    try:
        func(descriptor)
    except OSError as exc:
        print(f"prediction log fsync process: {func.__name__} failed: {exc}", file=sys.stderr, flush=True)
        return exc.errno or errno.EIO
    return 0


if __name__ == "__main__":
    # a Ctrl-C or a SIGTERM to the service's process group is the service's to handle: this process
    # answers what it has and ends when the service closes its socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=int(sys.argv[1])) as channel:
        _serve(channel, float(sys.argv[2]))
