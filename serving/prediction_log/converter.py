"""Segment-to-Parquet conversion in a child process, off the service's GIL.

Turning a second's records into Arrow columns is Python work (about 9 us a
record); in the service's process it held the GIL the event loop needs, and
set the p99 of the answers (``bench/http_bench.py``). The writer's Parquet
thread hands each closed segment to this child instead: the segment is on
disk already (the write-ahead file), so the child reads it, writes its files
exactly as :func:`~serving.prediction_log.files.write_segment` does, and
answers with what it wrote. The thread waits for the answer without the GIL.

The protocol is one JSON line each way over the child's stdin and stdout. The
child ends when its stdin closes, so it never outlives the service (a SIGKILL
of the service closes the pipe too). If it cannot start, dies or answers
wrongly, the segment is converted in the service's process as before: the
files' names depend only on the segment, so converting again is exactly once.
"""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from credit_risk.schema import FeatureSchema
from serving.prediction_log.files import SegmentOutput, WrittenFile, write_segment
from serving.prediction_log.wal import Segment, VersionKey, read_segment

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1  # prctl(2)


class ConverterError(RuntimeError):
    """The child could not convert a segment (it is converted in the service's process instead)."""


def _schema_text(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _schema_of(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


class Converter:
    """The parent's side: one child, started on first use, restarted after a failure.

    ``out_of_process=False`` converts every segment in this process (what a failure falls back to).
    """

    def __init__(self, command: list[str] | None = None, *, out_of_process: bool = True) -> None:
        self._command = command  # None: this module, told the service's pid
        self._out_of_process = out_of_process
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.converted = 0  # segments the child converted
        self.failures = 0  # segments it could not, converted here instead

    def write(
        self,
        directory: Path,
        wal_id: str,
        segment: Segment,
        arrow_schema: Callable[[VersionKey, FeatureSchema | None], pa.Schema],
    ) -> SegmentOutput:
        """A closed segment's Parquet files: written by the child, or here when it cannot."""
        if self._out_of_process:
            schemas = {key: arrow_schema(key, schema) for key, schema in segment.schemas.items()}
            try:
                output = self.convert(directory, wal_id, segment.path, segment.number, schemas)
            except ConverterError as exc:
                log.warning("prediction log: segment %d converted in the service's process (%s)", segment.number, exc)
                self.failures += 1
            else:
                self.converted += 1
                return output
        return write_segment(directory, wal_id, segment, arrow_schema)

    def convert(
        self, directory: Path, wal_id: str, path: Path, number: int, schemas: dict[VersionKey, pa.Schema]
    ) -> SegmentOutput:
        """Convert the segment file ``path`` in the child; :class:`ConverterError` when it could not."""
        request = {
            "directory": str(directory),
            "wal_id": wal_id,
            "path": str(path),
            "number": number,
            "schemas": [[list(key), _schema_text(schema)] for key, schema in schemas.items()],
        }
        message = json.dumps(request).encode() + b"\n"
        with self._lock:
            line = self._ask(message) or self._ask(message)  # a child that had died (OOM, kill): once more, anew
        if not line:
            raise ConverterError("the converter process ended without an answer, twice")
        answer = json.loads(line)
        if "error" in answer:
            raise ConverterError(answer["error"])
        files = [WrittenFile(**{**item, "path": Path(item["path"])}) for item in answer["files"]]
        return SegmentOutput(files, answer["invalid"])

    def _ask(self, message: bytes) -> bytes:
        """The child's answer line; empty when it ended before answering (it is then stopped)."""
        try:
            process = self._running()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(message)
            process.stdin.flush()
            line = process.stdout.readline()
        except OSError:  # could not start, or the pipe broke
            line = b""
        if not line:
            self._stop()
        return line

    def close(self) -> None:
        with self._lock:
            self._stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            paths = [str(_PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
            command = self._command or [sys.executable, "-m", "serving.prediction_log.converter", str(os.getpid())]
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=_PROJECT_ROOT,
                env=env,
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(5)


def _known(schemas: dict[VersionKey, pa.Schema], key: VersionKey, _: object) -> pa.Schema:
    return schemas[key]  # every version a segment names has its schema line, sent by the parent


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child: one segment per request line, one answer line each, until stdin closes."""
    for line in requests:
        try:
            request = json.loads(line)
            schemas = {tuple(key): _schema_of(text) for key, text in request["schemas"]}
            segment = read_segment(Path(request["path"]), request["number"])
            output = write_segment(Path(request["directory"]), request["wal_id"], segment, partial(_known, schemas))
            answer: dict[str, Any] = {
                "files": [{**asdict(item), "path": str(item.path)} for item in output.files],
                "invalid": output.invalid,
            }
        except Exception as exc:  # answered, not raised: the parent converts this segment itself
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


def _die_with_the_service(parent: int) -> None:
    """Linux: be killed the moment the service is, so no file is still being written when a restarted
    service recovers the same segment (it removes half-written temporaries at start)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        raise SystemExit(0)


if __name__ == "__main__":
    _die_with_the_service(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
