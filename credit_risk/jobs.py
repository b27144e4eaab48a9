"""Checking jobs started from the API (the Monitoring and Performance pages' "Refresh now").

The job that runs is the command's own code, ``python -m pipelines.monitor`` or
``python -m pipelines.performance``, in a process of its own (the service never
imports a job, and a job's pandas and matplotlib never take the service's
GIL). Each run is a folder's pair of files, ``<id>.json`` (its state) and
``<id>.log`` (its output), so every worker and every instance sharing the
folder sees it; one run of each job at a time.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from credit_risk.config import PROJECT_ROOT
from credit_risk.private_files import atomic_write

# job -> (module, what it is called in sentences, the parameters it takes and how each is checked)
JOBS: dict[str, tuple[str, str, dict[str, str]]] = {
    "monitor": ("pipelines.monitor", "Monitoring", {"start": "date", "end": "date"}),
    "performance": (
        "pipelines.performance",
        "The performance report",
        {"start": "date", "end": "date", "as_of": "date", "maturity_days": "days"},
    ),
}
OUTPUT_TAIL_LINES = 40
_RUN_ID = re.compile(r"\(MLflow run ([0-9a-f]{32})\)")


class JobError(ValueError):
    """A job that cannot be started: unknown, a bad parameter, or already running (``conflict``)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(frozen=True)
class JobRun:
    """One run of a job, as its state file records it."""

    id: str
    job: str
    state: str  # running, finished, failed
    actor: str
    started_at: str
    params: dict[str, str] = field(default_factory=dict)
    host: str = ""
    pid: int | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    mlflow_run_id: str | None = None
    output: list[str] = field(default_factory=list)  # the last lines it printed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_params(job: str, params: dict[str, Any]) -> dict[str, str]:
    """The job's parameters as command-line values; a bad one is named with its rule."""
    if job not in JOBS:
        raise JobError(f"job: {job!r} is not a job this service runs (one of: {', '.join(JOBS)})")
    allowed = JOBS[job][2]
    checked = {}
    for name, value in params.items():
        if name not in allowed:
            raise JobError(f"params.{name}: {job} takes no such parameter (it takes: {', '.join(allowed)})")
        text = str(value).strip()
        if allowed[name] == "date":
            try:
                date.fromisoformat(text)
            except ValueError:
                raise JobError(f"params.{name}: expected a date YYYY-MM-DD, got {text[:40]!r}") from None
        elif not text.isdigit() or int(text) > 36500:
            raise JobError(f"params.{name}: expected a whole number of days from 0 to 36500, got {text[:40]!r}")
        checked[name] = text
    return checked


class JobRunner:
    """Starts the jobs in processes of their own and records each run in ``folder``."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = Path(folder)
        self.env = env
        self._lock = threading.Lock()

    def _state_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def _write(self, run: JobRun) -> None:
        atomic_write(self._state_path(run.id), lambda handle: json.dump(run.to_json(), handle), mode="w")

    def get(self, run_id: str) -> JobRun | None:
        """The run's state, with the output so far; a run whose process is gone from this host is failed."""
        if not re.fullmatch(r"[0-9a-f]{32}", run_id):
            return None
        path = self._state_path(run_id)
        if not path.is_file():
            return None
        run = JobRun(**json.loads(path.read_text()))
        output = self._tail(run.id)
        run = replace(run, output=output)
        if run.state == "running" and run.host == socket.gethostname() and run.pid and not _alive(run.pid):
            run = replace(run, state="failed", finished_at=_now(), output=[*output, "the job's process ended"])
        return run

    def runs(self) -> list[JobRun]:
        """Every recorded run, newest first."""
        if not self.folder.is_dir():
            return []
        found = [self.get(path.stem) for path in self.folder.glob("*.json")]
        return sorted((run for run in found if run is not None), key=lambda run: run.started_at, reverse=True)

    def start(self, job: str, params: dict[str, Any], *, actor: str) -> JobRun:
        """Start ``job`` now (JobError when it is unknown, a parameter is bad, or it is already running)."""
        checked = check_params(job, params)
        module = JOBS[job][0]
        with self._lock:
            running = [run for run in self.runs() if run.job == job and run.state == "running"]
            if running:
                raise JobError(
                    f"{JOBS[job][1]} is already running (started {running[0].started_at} by {running[0].actor})",
                    conflict=True,
                )
            run = JobRun(id=uuid.uuid4().hex, job=job, state="running", actor=actor, started_at=_now(), params=checked)
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            arguments = [f"--{name.replace('_', '-')}={value}" for name, value in checked.items()]
            log_file = os.open(self.folder / f"{run.id}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", module, "--alert-exit-code", "0", *arguments],
                    cwd=PROJECT_ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C of the service is not the job's
                )
            finally:
                os.close(log_file)
            run = replace(run, pid=process.pid, host=socket.gethostname())
            self._write(run)
        threading.Thread(target=self._wait, args=(run, process), name=f"job-{job}", daemon=True).start()
        return run

    def _wait(self, run: JobRun, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        output = self._tail(run.id)
        found = [match.group(1) for line in output for match in [_RUN_ID.search(line)] if match]
        self._write(
            replace(
                run,
                state="finished" if code == 0 else "failed",
                finished_at=_now(),
                exit_code=code,
                mlflow_run_id=found[-1] if found else None,
            )
        )

    def _tail(self, run_id: str) -> list[str]:
        path = self.folder / f"{run_id}.log"
        if not path.is_file():
            return []
        lines = path.read_text(errors="replace").splitlines()
        return lines[-OUTPUT_TAIL_LINES:]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
