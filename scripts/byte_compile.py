"""Byte-compile the modules under some folders on every core: ``python scripts/byte_compile.py DIR...``.

What ``python -m compileall -q -j 0 -x '/tests?/' DIR...`` does (the same ``compileall.compile_file``
for each module, a module whose bytecode is current left alone, the exit status 1 when one does not
compile), with the modules handed to the worker processes in a few large batches: compileall hands
them over one at a time, and for the ten thousand modules of the installed packages the hand-overs
cost more CPU than the compiling (docs/operations.md). Folders named ``test`` or ``tests`` are left
out, as the packages' own test suites are never imported here.
"""

from __future__ import annotations

import compileall
import os
import sys
from concurrent.futures import ProcessPoolExecutor

SKIPPED_FOLDERS = frozenset({"__pycache__", "test", "tests"})


def modules_under(folder: str) -> list[str]:
    """Every ``.py`` file under ``folder``, outside the skipped folders."""
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if name not in SKIPPED_FOLDERS)
        found.extend(os.path.join(root, name) for name in sorted(names) if name.endswith(".py"))
    return found


def _compile(paths: list[str]) -> bool:
    # every module is compiled even after one fails, as compileall does (quiet=1: only failures are printed)
    return all([compileall.compile_file(path, quiet=1) for path in paths])


def main(folders: list[str]) -> int:
    modules = [path for folder in folders for path in modules_under(folder)]
    workers = os.cpu_count() or 1
    batches = [modules[start :: workers * 4] for start in range(workers * 4)]  # a few per core: even ends
    with ProcessPoolExecutor(workers) as pool:
        compiled = list(pool.map(_compile, batches))
    return 0 if all(compiled) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
