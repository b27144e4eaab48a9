"""Files and folders that hold personal data: created 0600 and 0700, whatever the process's umask;
and the one way every file the product replaces is written whole (:func:`atomic_write`).

The write-ahead segments, the log's Parquet files and their salvage, the decision index and its
lookup copies, the outcomes table, the uploads journal and the access log hold applicants' data
(or name the files that do): only the service's own user may read them. Everything that creates
one goes through here, so no copy is left to the umask (022 would make them world-readable).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700 folders (an existing folder is left as it is)."""
    path = Path(path)
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
            folder.mkdir(mode=PRIVATE_DIR)
    return path


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def private_open(path: Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)``, a file it creates being 0600 (mode bits are set at creation, never widened)."""
    return open(path, mode, opener=_opener, **kwargs)


def private_descriptor(path: Path, flags: int) -> int:
    """``os.open(path, flags)``, a file it creates being 0600."""
    return os.open(path, flags, PRIVATE_FILE)


def touch_private(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it does not exist (for files another library then opens: SQLite
    gives its ``-wal`` and ``-shm`` files the database file's mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    return Path(path)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable: fsync the folder itself."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_and_place(
    path: Path, write: Callable[[IO[Any]], object], mode: str, place: Callable[[Path, Path], None]
) -> None:
    """``write(handle)`` fills a temporary dot-name of its own in ``path``'s folder (readers skip dot-names;
    two writers never share one), 0600, fsynced; ``place(temporary, path)`` then puts it in place. The
    temporary name is gone afterwards, whatever happened."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with private_open(temporary, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        place(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[IO[Any]], object], *, mode: str = "wb", durable: bool = True) -> Path:
    """Write ``path`` whole or not at all: the content is written to a temporary name and renamed over
    ``path``; when ``durable``, the folder is fsynced so the rename survives a power cut."""
    path = Path(path)
    _write_and_place(path, write, mode, os.replace)
    if durable:
        fsync_dir(path.parent)
    return path


def write_once(path: Path, content: bytes) -> bytes:
    """Create ``path`` (0600) holding ``content`` whole, unless it exists: returns what the file holds, ours
    or the one another process created first (a temporary copy is hard-linked in, which fails if the name
    is taken, so no reader ever sees a file half written)."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    try:
        _write_and_place(path, lambda handle: handle.write(content), "wb", os.link)
    except FileExistsError:
        return path.read_bytes()
    fsync_dir(path.parent)
    return content
