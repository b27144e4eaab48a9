"""Retention of the decision log: every copy of a logged decision older than ``retention_days`` goes.

The product keeps logged decisions (and the personal data in them) in these places, and each
is cut at the same date:

- the log's ``date=`` partitions (Parquet) under the log directory;
- the salvage of records that did not fit the schema, ``<log dir>/_invalid/*.jsonl`` (by the
  date the file was written);
- the audit index's entries and its lookup copies (``<audit>/decisions-rows/date=.../``);
- the access log's lines (they name the request and applicant ids that were looked up);
- the MLflow copies, ``predictions/date=.../`` in every run of the serving experiment.

The write-ahead segments live seconds (they become Parquet and are deleted); the outcomes table
is kept (its rows are the loans' history, needed as long as performance is reported).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.audit.access import access_log_path, index_path, prune_access_log
from credit_risk.audit.index import DecisionIndex
from credit_risk.audit.request_ids import RequestIdLedger, ledger_path
from credit_risk.config import ProjectConfig, Settings
from credit_risk.decision_log.paths import ARTIFACT_DIR, INVALID_DIR, PARTITION_DIR, resolve_log_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionTargets:
    """Where the copies are: the log directory, and (when known) the audit files and the MLflow store."""

    log_dir: Path
    index_path: Path | None = None  # the audit index; its lookup copies sit beside it
    access_log: Path | None = None
    request_ids: Path | None = None  # the request id ledger (ids and the answers kept for retries)
    client_factory: Callable[[], MlflowClient] | None = None  # the MLflow store holding the serving runs
    serving_experiment: str = "credit-risk-serving"


@dataclass(frozen=True)
class RetentionReport:
    """What one pass deleted."""

    partitions: list[str]  # dates of the log's partitions
    salvage_files: int
    index_partitions: list[str]
    access_lines: int
    artifact_folders: list[str]  # <run id>/predictions/date=...


def retention_targets(config: ProjectConfig, settings: Settings) -> RetentionTargets:
    """Every copy a deployment makes, from its configuration."""
    return RetentionTargets(
        log_dir=resolve_log_dir(config, settings),
        index_path=index_path(config, settings),
        access_log=access_log_path(config, settings),
        request_ids=ledger_path(config, settings),
        client_factory=functools.partial(registry.connect, settings, config.root),
        serving_experiment=config.model.prediction_log.serving_experiment,
    )


def apply_retention(
    targets: RetentionTargets, *, today: date, retention_days: int, remote: bool = True
) -> RetentionReport:
    """Delete every copy of decisions logged before ``today - retention_days`` (UTC dates).

    ``remote=False`` leaves the MLflow copies to :func:`delete_old_mlflow_copies` (the service runs it on a
    thread of its own). A part that fails is logged and retried at the next pass; the others still run.
    """
    oldest_kept = today - timedelta(days=retention_days)
    partitions = delete_old_partitions(targets.log_dir, oldest_kept=oldest_kept)
    salvage = _delete_old_salvage(targets.log_dir / INVALID_DIR, oldest_kept)
    forgotten: list[str] = []
    if targets.index_path is not None and targets.index_path.exists():
        try:
            index = DecisionIndex(targets.log_dir, targets.index_path)
            try:
                forgotten = index.forget_before(oldest_kept)
            finally:
                index.close()
        except Exception:  # a locked or damaged index: the next pass tries again
            log.exception("retention: the audit index could not be cut")
    lines = 0
    if targets.access_log is not None:
        try:
            lines = prune_access_log(targets.access_log, before=datetime.combine(oldest_kept, time(), UTC))
        except OSError:
            log.exception("retention: the access log could not be cut")
    if targets.request_ids is not None and targets.request_ids.exists():
        try:
            ledger = RequestIdLedger(targets.request_ids, retention_days=retention_days)
            try:
                ledger.housekeep(before=datetime.combine(oldest_kept, time(), UTC).timestamp())
            finally:
                ledger.close()
        except Exception:  # a locked ledger: the next pass tries again
            log.exception("retention: the request id ledger could not be cut")
    artifacts = delete_old_mlflow_copies(targets, today=today, retention_days=retention_days) if remote else []
    report = RetentionReport(partitions, salvage, forgotten, lines, artifacts)
    if partitions or salvage or forgotten or lines:
        log.info("retention before %s: %s", oldest_kept, report)
    return report


def delete_old_mlflow_copies(targets: RetentionTargets, *, today: date, retention_days: int) -> list[str]:
    """Delete the serving runs' ``predictions/date=...`` folders older than ``today - retention_days``;
    returns them as ``<run id>/<path>``. An unreachable registry is logged: the next pass tries again."""
    if targets.client_factory is None:
        return []
    oldest_kept = today - timedelta(days=retention_days)
    try:
        deleted = _delete_old_artifacts(targets.client_factory(), targets.serving_experiment, oldest_kept)
    except Exception as exc:
        log.warning("retention: MLflow copies not cut (registry unreachable?): %s", exc)
        return []
    if deleted:
        log.info("retention before %s: MLflow copies deleted %s", oldest_kept, deleted)
    return deleted


def delete_old_partitions(directory: Path, *, oldest_kept: date) -> list[str]:
    """Delete the log's ``date=`` partitions older than ``oldest_kept``; returns the dates deleted."""
    deleted = []
    with contextlib.suppress(FileNotFoundError):
        for child in Path(directory).iterdir():
            day = _partition_date(child.name)
            if day is not None and day < oldest_kept and child.is_dir():
                # another worker may be deleting the same folder: ignore what has gone
                shutil.rmtree(child, ignore_errors=True)
                deleted.append(day.isoformat())
    return sorted(deleted)


def _delete_old_salvage(folder: Path, oldest_kept: date) -> int:
    """Salvage files written before ``oldest_kept`` (their records were logged when the file was written)."""
    deleted = 0
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                written = datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
                if path.is_file() and written < oldest_kept:
                    path.unlink()
                    deleted += 1
    return deleted


def _delete_old_artifacts(client: MlflowClient, experiment: str, oldest_kept: date) -> list[str]:
    deleted = []
    for run_id in registry.serving_run_ids(client, experiment):
        for folder in registry.list_artifact_folders(client, run_id, ARTIFACT_DIR):
            day = _partition_date(Path(folder).name)
            if day is not None and day < oldest_kept:
                registry.delete_run_artifacts(client, run_id, folder)
                deleted.append(f"{run_id}/{folder}")
    return deleted


def _partition_date(name: str) -> date | None:
    match = PARTITION_DIR.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None
