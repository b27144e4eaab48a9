"""Replay: re-make every logged decision in a window with what made it, and prove it comes out the same.

``mlflow run . -e replay --env-manager local [-P start=YYYY-MM-DD] [-P end=YYYY-MM-DD] [-P log_dir=...]``
(or ``python -m pipelines.replay``). Each record is re-scored by the model version named in it
(fetched from the registry and verified) under the decision policy version named in it (read
back from MLflow): never by what serves now. The summary (counts of identical, different and
not replayable records, and each one that was not identical) is logged to an MLflow run in
``audit.replay_experiment``. Exit codes: 0 all identical, 1 an error, 2 any record different or
not replayable.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow

from credit_risk import registry
from credit_risk.audit import replay
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import read_dirs, resolve_log_dir
from credit_risk.decision_log.reader import LogDirs, read_log
from pipelines.cli import add_config_dir, add_window, run_job

log = logging.getLogger(__name__)


def window_of(config: ProjectConfig, start: date | None, end: date | None) -> tuple[date, date]:
    """The UTC dates to replay: by default the whole retained log, up to today."""
    today = datetime.now(UTC).date()
    last = end or today
    first = start or (today - timedelta(days=config.model.prediction_log.retention_days))
    if first > last:
        raise registry.RegistryError(f"start {first} is after end {last}")
    return first, last


def load_records(config: ProjectConfig, log_dir: LogDirs, start: date, end: date) -> list[dict[str, Any]]:
    """The logged rows of the served model's name in the window, through the core's reader."""
    privacy = config.model.prediction_log
    schema = log_schema(config.features, drop_fields=privacy.drop_fields, hash_fields=privacy.hash_fields)
    table = read_log(log_dir, schema, start=start, end=end, model_name=config.model.registry.model_name)
    return table.sort_by([("scored_at", "ascending"), ("request_id", "ascending")]).to_pylist()


def replay_window(
    config: ProjectConfig,
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Replay a window of the log; returns the summary (with ``exit_code``) and logs it to MLflow."""
    client = registry.connect(settings, config.root)
    first, last = window_of(config, start, end)
    folder = log_dir or resolve_log_dir(config, settings)
    records = load_records(config, read_dirs(config, settings, log_dir), first, last)
    key = settings.model_signing_key.get_secret_value() if settings.model_signing_key else None
    results = replay.replay_records(records, replay.VersionCache(client, config, signing_key=key))
    summary = {
        "window": {"start": first.isoformat(), "end": last.isoformat()},
        "log_dir": str(folder),
        **replay.summarise(results),
        "by_version": _by_version(results),
    }
    summary["exit_code"] = 2 if summary["different"] or summary["not_replayable"] else 0
    summary["run_id"] = log_run(client, config, summary, folder)
    log.info(
        "replayed %d records (%s..%s): %d identical, %d different, %d not replayable",
        summary["records"],
        first,
        last,
        summary["identical"],
        summary["different"],
        summary["not_replayable"],
    )
    for entry in summary["differences"][:20]:
        log.warning(
            "%s (v%s): %s %s",
            entry["request_id"],
            entry["model_version"],
            entry["status"],
            entry["error"] or entry["differences"],
        )
    return summary


def _by_version(results: list[replay.RecordReplay]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for result in results:
        entry = out.setdefault(f"{result.model_version}/{result.policy_version}", {})
        entry[result.status] = entry.get(result.status, 0) + 1
    return out


def log_run(client: Any, config: ProjectConfig, summary: dict[str, Any], log_dir: Path) -> str:
    experiment_id = registry.ensure_experiment(client, config.model.audit.replay_experiment)
    window = summary["window"]
    status = "identical" if summary["exit_code"] == 0 else "differences"
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"replay {window['start']}..{window['end']}", tags={"status": status}
        ) as run,
    ):
        registry.log_job_params({"start": window["start"], "end": window["end"], "log_dir": str(log_dir)})
        mlflow.log_metrics(
            {key: float(summary[key]) for key in ("records", "identical", "different", "not_replayable")}
        )
        path = Path(tmp) / "replay_summary.json"
        path.write_text(json.dumps({k: v for k, v in summary.items() if k != "run_id"}, indent=2, default=str))
        mlflow.log_artifact(str(path), artifact_path="replay")
        return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    add_window(
        parser, start_help="first UTC date (default: retention_days ago)", end_help="last UTC date (default: today)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    result: dict[str, Any] = {}

    def job() -> None:
        config = load_project_config(args.config_dir or settings.config_dir)
        result.update(replay_window(config, settings, start=args.start, end=args.end, log_dir=args.log_dir))
        print(json.dumps({k: result[k] for k in ("window", "records", "identical", "different", "not_replayable")}))

    code = run_job(job)
    return code or int(result.get("exit_code", 0))


if __name__ == "__main__":
    raise SystemExit(main())
