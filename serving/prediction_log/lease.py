"""Who owns a write-ahead folder: its writer's lock and its lease, and when another writer may take it over.

Each writer owns ``<log dir>/_wal/<writer id>/`` and every file named after its
id. Two signals say that the owner is alive:

* the folder's ``lock`` (an exclusive ``flock``): the kernel drops it when the
  process dies, whatever the signal. It proves a writer dead only to processes
  of the same kernel: storage shared between hosts need not pass locks on
  (NFS mounted ``nolock`` or ``local_lock``, SMB, FUSE file systems);
* the folder's ``lease`` (JSON: writer id, host, kernel boot id, process id,
  ``expires_at``), renewed every third of ``lease_seconds`` by its writer. A
  writer of another kernel counts as dead only once its lease has expired.

So a folder is taken over (its segments converted, then the folder removed)
only when its lock is free and either its lease names this kernel's boot id
(the lock is then authoritative) or its lease has expired. A folder without a
lease (a writer that died before writing one, or an older release's) is taken
over once its lock is free and it has not changed for ``lease_seconds``, or at
once when it holds segments (an older release, whose lock was its only sign of
life: upgrade every instance sharing a directory together). The
hosts' clocks must agree to well within ``lease_seconds`` (NTP).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from credit_risk.private_files import atomic_write
from serving.prediction_log.wal import WAL_DIR, WalLock, segments_of

log = logging.getLogger(__name__)

LEASE_FILE = "lease"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    """This kernel's boot id (Linux); elsewhere the host name (a lease is then judged by its expiry)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return socket.gethostname()


BOOT_ID = _boot_id()


def writer_identity(instance: str | None) -> str:
    """A writer id unique across hosts and restarts: the instance's name (default: the host name) and a
    random part (each worker process of an instance is a writer of its own)."""
    base = re.sub(r"[^A-Za-z0-9_.]", "_", instance or socket.gethostname())[:40] or "host"
    return f"{base}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Lease:
    writer: str
    host: str
    boot_id: str
    pid: int
    expires_at: float  # seconds since the epoch (this host's clock)


def write_lease(folder: Path, writer: str, lease_seconds: float) -> Lease:
    """Write (or renew) the lease: temporary file, fsync, rename, fsync of the folder."""
    lease = Lease(writer, socket.gethostname(), BOOT_ID, os.getpid(), time.time() + lease_seconds)
    atomic_write(folder / LEASE_FILE, lambda handle: json.dump(asdict(lease), handle), mode="w")
    return lease


def read_lease(folder: Path) -> Lease | None:
    """The folder's lease, or None when it has none (or an unreadable one)."""
    try:
        return Lease(**json.loads((folder / LEASE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _untouched_for(folder: Path, seconds: float) -> bool:
    try:
        newest = max(entry.stat().st_mtime for entry in [folder, *folder.iterdir()])
    except OSError:
        return False
    return time.time() - newest > seconds


def may_take_over(folder: Path, lease_seconds: float) -> bool:
    """Whether the writer of ``folder`` is dead by its lease (the caller holds the folder's lock)."""
    lease = read_lease(folder)
    if lease is None:  # segments without a lease: an older release's, whose lock was its only sign of life
        return bool(segments_of(folder)) or _untouched_for(folder, lease_seconds)
    return lease.boot_id == BOOT_ID or time.time() > lease.expires_at


def abandoned_wals(log_dir: Path, *, own: str, lease_seconds: float) -> list[tuple[str, WalLock]]:
    """WAL folders whose writer is dead (lock free and lease expired or of this kernel), each locked."""
    root = Path(log_dir) / WAL_DIR
    found = []
    with contextlib.suppress(FileNotFoundError):
        for folder in sorted(root.iterdir()):
            if folder.name == own or not folder.is_dir():
                continue
            lock = WalLock(folder)
            if not lock.acquire(create=False):
                continue
            if may_take_over(folder, lease_seconds):
                found.append((folder.name, lock))
            else:
                lock.release()
    return found


def is_live(log_dir: Path, writer: str, lease_seconds: float) -> bool:
    """Whether ``writer`` may still be writing: its folder exists and it is not dead by its lock and lease."""
    folder = Path(log_dir) / WAL_DIR / writer
    if not folder.is_dir():
        return False
    lock = WalLock(folder)
    if not lock.acquire(create=False):
        return (folder / "lock").exists()
    try:
        return not may_take_over(folder, lease_seconds)
    finally:
        lock.release()


class LeaseKeeper:
    """Renews this writer's lease every third of ``lease_seconds`` on a thread of its own.

    A writer whose lease could not be renewed must stop taking records before it expires:
    another host may then take its folder over. ``valid`` says whether there is still time.
    """

    def __init__(self, folder: Path, writer: str, lease_seconds: float) -> None:
        self.folder = folder
        self.writer = writer
        self.lease_seconds = lease_seconds
        self._expires_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Write the first lease (raises OSError when it cannot), then renew it in the background."""
        self._expires_at = write_lease(self.folder, self.writer, self.lease_seconds).expires_at
        self._thread = threading.Thread(target=self._run, name="prediction-log-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def valid(self) -> bool:
        """True while the lease has more than a third of its time left (the margin covers clock skew)."""
        return time.time() < self._expires_at - self.lease_seconds / 3

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self._expires_at = write_lease(self.folder, self.writer, self.lease_seconds).expires_at
            except OSError as exc:  # retried at the next tick; the writer refuses records once it runs short
                log.warning("prediction log: lease of %s not renewed: %s", self.writer, exc)
