"""Helpers for tests that run real subprocesses (servers, workers, CLIs).

Everything here is side-effect free at import time.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = [
    "RunningProcess",
    "free_port",
    "running_process",
    "wait_for_http",
]

_LOG_TAIL_CHARS = 4000


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _probe(url: str, status: int | None, per_try_timeout: float) -> None:
    """Make one request; return if it matches ``status``, raise otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=per_try_timeout) as resp:
            code = resp.status
    except urllib.error.HTTPError as exc:  # a non-2xx answer is still an answer
        code = exc.code
    if status is not None and code != status:
        raise ValueError(f"{url} answered HTTP {code}, expected {status}")


def wait_for_http(
    url: str,
    *,
    timeout: float = 60.0,
    status: int | None = 200,
    is_alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``url`` until it answers with ``status`` (any answer if None).

    ``is_alive``, if given, is checked between tries; when it returns False
    the wait stops early with RuntimeError. Raises TimeoutError carrying the
    last error when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    last_error: BaseException | None = None
    while True:
        try:
            _probe(
                url,
                status,
                per_try_timeout=min(5.0, max(deadline - time.monotonic(), 0.1)),
            )
            return
        except (OSError, ValueError) as exc:  # URLError and socket errors are OSError
            last_error = exc
        if is_alive is not None and not is_alive():
            raise RuntimeError(f"process exited while waiting for {url}: {last_error!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{url} not ready after {timeout:.1f}s; last error: {last_error!r}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.5)


class RunningProcess:
    """Handle on a subprocess started by :func:`running_process`."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: pathlib.Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """Process id (also the process-group id: it leads its own session)."""
        return self.proc.pid

    def log_text(self) -> str:
        """Everything the process has written to stdout/stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The last ``chars`` characters of the log."""
        return self.log_text()[-chars:]

    def is_running(self) -> bool:
        """True while the main process has not exited."""
        return self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            # Group already gone (or only zombies left): fall back to the leader.
            with contextlib.suppress(ProcessLookupError):
                if self.proc.poll() is None:
                    self.proc.send_signal(sig)

    def _group_alive(self) -> bool:
        """True while a non-zombie member of the process group remains."""
        pgid = self.proc.pid
        proc_dir = pathlib.Path("/proc")
        if not proc_dir.is_dir():  # not Linux: zombies count as alive
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return False
            return True
        for stat_file in proc_dir.glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            # fields: state, ppid, pgrp, ... (after the "(comm)" field)
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False

    def _reap_group(self, grace: float) -> None:
        """Give leftover group members ``grace`` seconds, then SIGKILL them."""
        deadline = time.monotonic() + grace
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` to the whole process group, wait, SIGKILL on timeout.

        Returns the main process's exit code (negative signal number if it was
        killed by a signal, as with Popen.returncode).
        """
        if self.proc.poll() is None:
            self._signal_group(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._reap_group(grace=min(float(timeout), 2.0))
        assert self.proc.returncode is not None
        return self.proc.returncode


def mlflow_server_env() -> dict[str, str]:
    """The environment for an ``mlflow server`` the tests start: without MLflow's job runner (about ten
    huey consumer processes polling, most of a core between them on this machine), which nothing here uses."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@contextlib.contextmanager
def running_process(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    ready_url: str | None = None,
    timeout: float = 90.0,
    log_path: pathlib.Path | None = None,
    ready_status: int | None = 200,
) -> Iterator[RunningProcess]:
    """Run ``args`` in its own process group for the duration of the block.

    stdout and stderr go to ``log_path`` (a temporary file if None, removed on
    exit). If ``ready_url`` is given, waits up to ``timeout`` seconds for it to
    answer with ``ready_status`` (any answer if None). If the process dies or
    never gets ready, it is stopped and RuntimeError/TimeoutError is raised
    with the tail of its log. On leaving the block the process group is
    terminated if still running.
    """
    own_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="proc-", suffix=".log")
        os.close(fd)
        log_path = pathlib.Path(name)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)

    try:
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                list(args),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        handle = RunningProcess(proc, log_path)
        try:
            if ready_url is not None:
                try:
                    wait_for_http(
                        ready_url,
                        timeout=timeout,
                        status=ready_status,
                        is_alive=handle.is_running,
                    )
                except RuntimeError:
                    code = handle.terminate(timeout=5)
                    raise RuntimeError(
                        f"{args[0]} exited with code {code} before {ready_url} was ready; "
                        f"log tail:\n{handle.log_tail()}"
                    ) from None
                except TimeoutError as exc:
                    handle.terminate(timeout=10)
                    raise TimeoutError(f"{exc}; log tail:\n{handle.log_tail()}") from None
            yield handle
        finally:
            handle.terminate()
    finally:
        if own_log:
            with contextlib.suppress(FileNotFoundError):
                log_path.unlink()
