"""MLflow copies of the log: closed files go to a serving run per model version, retried with backoff.

Each successful upload is appended to this writer's journal
(``<log dir>/_uploads/<wal id>.txt``). At start the uploader reconciles: every
local file that no journal lists (its upload never succeeded, for instance the
registry was down until a restart) is queued again. A crash between an upload
and its journal line only means one more upload of the same file (same name,
same bytes). Journals of writers that are gone are folded into this one. Files of
a writer that is still alive (here or on another host sharing the directory)
are its own to upload: only its journal, once it is dead, hands them over.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import PredictionLogConfig
from credit_risk.decision_log.paths import ARTIFACT_DIR, PARTITION, PARTITION_DIR
from credit_risk.private_files import private_dir, private_open
from serving.prediction_log.lease import is_live

log = logging.getLogger(__name__)

UPLOADS_DIR = "_uploads"
_PART = re.compile(r"^part-(.+)-\d{9}-\d{3}\.parquet$")  # part-<writer id>-<segment>-<rank>.parquet
_IDLE_WAKE = 60.0


@dataclass
class Upload:
    path: Path
    day: str
    model_name: str
    model_version: str
    attempts: int = 0
    next_try: float = 0.0


def _relative(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


class Uploader:
    """One background thread copying files to MLflow; ``stats`` is shared with the writer (under its lock)."""

    def __init__(
        self,
        config: PredictionLogConfig,
        *,
        directory: Path,
        wal_id: str,
        client_factory: Callable[[], MlflowClient],
        count: Callable[[str, int], None],
    ) -> None:
        self.config = config
        self.directory = directory
        self.wal_id = wal_id
        self._client_factory = client_factory
        self._count = count
        self._client: MlflowClient | None = None
        self._runs: dict[tuple[str, str], str] = {}
        self._items: list[Upload] = []
        self._wake = threading.Condition(threading.Lock())
        self._stop_at: float | None = None
        self._thread: threading.Thread | None = None
        self._journal = directory / UPLOADS_DIR / f"{wal_id}.txt"

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._items)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log-uploader", daemon=True)
        self._thread.start()

    def add(self, item: Upload) -> None:
        with self._wake:
            self._items.append(item)
            self._wake.notify()

    def stop(self, deadline: float) -> None:
        """Give the pending files one last try before ``deadline`` (monotonic), up to the first failure;
        what is not uploaded stays local and is queued again at the next start (:meth:`reconcile`)."""
        with self._wake:
            self._stop_at = deadline
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
        with self._wake:
            if self._items:
                log.warning("prediction log: %d file(s) not uploaded to MLflow yet (kept locally)", len(self._items))

    # ------------------------------------------------------------ reconcile at start

    def reconcile(self) -> int:
        """Queue every local file no journal lists as uploaded; fold the journals of gone writers into ours."""
        folder = self.directory / UPLOADS_DIR
        private_dir(folder)
        uploaded: set[str] = set()
        gone: list[Path] = []
        for journal in folder.glob("*.txt"):
            with contextlib.suppress(FileNotFoundError):
                uploaded.update(line for line in journal.read_text().splitlines() if line)
            if journal != self._journal and not is_live(self.directory, journal.stem, self.config.lease_seconds):
                gone.append(journal)
        local: dict[str, Path] = {}
        for partition in self.directory.iterdir():
            if PARTITION_DIR.match(partition.name) and partition.is_dir():
                for path in partition.glob("part-*.parquet"):
                    local[_relative(path)] = path
        kept = sorted(uploaded & set(local))
        if gone:  # ours now lists what theirs did (for files still here); then theirs can go
            self._append(kept)
            for journal in gone:
                journal.unlink(missing_ok=True)
        missing = [path for name, path in sorted(local.items()) if name not in uploaded]
        writers: dict[str, bool] = {}
        for path in missing:
            writer = _writer_of(path.name)
            if writer == self.wal_id:
                continue  # ours: queued when written
            if writer is not None:
                if writer not in writers:
                    writers[writer] = is_live(self.directory, writer, self.config.lease_seconds)
                if writers[writer]:
                    continue  # a live writer's: it uploads them itself
            owner = _owner(path)
            if owner is not None:
                self.add(Upload(path, PARTITION_DIR.match(path.parent.name).group(1), *owner))  # type: ignore[union-attr]
        if missing:
            log.info("prediction log: %d local file(s) not yet in MLflow queued for upload", len(missing))
        return len(missing)

    def _append(self, names: list[str]) -> None:
        if names:
            with private_open(self._journal, "a") as handle:
                handle.write("".join(f"{name}\n" for name in names))

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self.reconcile()
        except Exception:  # a broken folder must not stop the uploads of new files
            log.exception("prediction log: reconciling uploads failed")
        while True:
            with self._wake:
                stopping = self._stop_at is not None
                if stopping and (not self._items or time.monotonic() >= self._stop_at):  # type: ignore[operator]
                    return
                ready = [u for u in self._items if stopping or u.next_try <= time.monotonic()]
                if not ready:
                    next_try = min((u.next_try for u in self._items), default=time.monotonic() + _IDLE_WAKE)
                    self._wake.wait(max(next_try - time.monotonic(), 0.01))
                    continue
                item = ready[0]
            ok = self._upload(item)
            with self._wake:
                if ok:
                    self._items.remove(item)
                elif stopping:
                    # the registry fails now: trying each file in turn (every try waits out the client's
                    # own retries, seconds each) would hold the shutdown; the next start uploads them
                    return

    def _upload(self, item: Upload) -> bool:
        if not item.path.exists():  # removed by retention meanwhile
            return True
        try:
            if self._client is None:
                self._client = self._client_factory()
            run_key = (item.model_name, item.model_version)
            if run_key not in self._runs:
                self._runs[run_key] = registry.serving_run_id(
                    self._client,
                    experiment=self.config.serving_experiment,
                    model_name=item.model_name,
                    model_version=item.model_version,
                )
            registry.log_artifact_file(
                self._client, self._runs[run_key], item.path, f"{ARTIFACT_DIR}/{PARTITION}={item.day}"
            )
        except Exception as exc:  # any failure of the registry is retried, never raised
            item.attempts += 1
            item.next_try = time.monotonic() + min(2.0**item.attempts, self.config.upload_retry_max_seconds)
            self._count("upload_failures", 1)
            log.warning("prediction log: upload of %s failed (attempt %d): %s", item.path.name, item.attempts, exc)
            return False
        self._append([_relative(item.path)])
        self._count("uploaded_files", 1)
        return True


def _writer_of(name: str) -> str | None:
    match = _PART.match(name)
    return match.group(1) if match else None


def _owner(path: Path) -> tuple[str, str] | None:
    """(model name, model version) of a local file: from its metadata, else from its first row."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        if b"model_name" in metadata:
            return metadata[b"model_name"].decode(), metadata[b"model_version"].decode()
        first = pq.read_table(path, columns=["model_name", "model_version"]).slice(0, 1).to_pylist()
        return (str(first[0]["model_name"]), str(first[0]["model_version"])) if first else None
    except Exception as exc:  # a damaged file is reported, not uploaded
        log.warning("prediction log: cannot read %s to upload it: %s", path.name, exc)
        return None
