"""Monitor: drift and health of the served model, from the prediction log.

``mlflow run . -e monitor [-P start=YYYY-MM-DD] [-P end=YYYY-MM-DD] [-P log_dir=...] [-P version=N]``
(or ``python -m pipelines.monitor``). For a window of UTC dates (default: the
last ``monitoring.window_days`` days) it compares the rows logged by the served
version with that version's training reference profile: volume, latency
percentiles, decision mix, score distribution, PSI of the probability and of
every feature (bins fixed on the training data), and approval-rate ratios
across protected groups. It logs metrics and a drift report to an MLflow run,
writes the latest summary (read by ``GET /v1/monitoring``), prints what it found, and exits 2
when the configured alert level is crossed (1 on an error, 0 otherwise; ``mlflow run`` and
``make monitor`` pass ``--alert-exit-code 0``: the alert is printed as a finding and recorded in
the run, which stays FINISHED).
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from pathlib import Path
from typing import Any

from credit_risk import registry
from credit_risk.cases import default_path, open_store
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import read_dirs, resolve_log_dir, summary_path, write_summary
from credit_risk.decision_log.reader import read_log_counted
from pipelines.cli import add_alert_exit_code, add_config_dir, add_window, report_findings, run_job
from pipelines.monitor.drift import EXIT_ALERT, crosses, default_window, load_reference, summarise
from pipelines.monitor.report import log_run

log = logging.getLogger(__name__)


def add_review_queue(summary: dict[str, Any], config: ProjectConfig, log_dir: Path) -> None:
    """The review queue's figures, and a major alert when more than ``review.max_overdue_share`` of the
    waiting cases are past their due time (human oversight that does not keep up is no oversight)."""
    review = config.model.review
    if review.database_url is None and not default_path(log_dir).is_file():
        return
    store = open_store(review, log_dir)
    try:
        figures = store.gauges()
    finally:
        store.close()
    share = figures["overdue"] / figures["open"] if figures["open"] else 0.0
    summary["review"] = {**figures, "overdue_share": share, "max_overdue_share": review.max_overdue_share}
    if share <= review.max_overdue_share:
        return
    summary["alerts"].append(
        {
            "level": "major",
            "kind": "review_overdue",
            "subject": "review queue",
            "value": share,
            "threshold": review.max_overdue_share,
            "message": f"{share:.0%} of the {figures['open']:.0f} waiting cases are past their due time "
            f"(> {review.max_overdue_share:.0%})",
        }
    )
    summary["alert_level"] = "major"
    summary["status"] = "alert"
    summary["exit_code"] = EXIT_ALERT if crosses("major", config.model.monitoring) else summary["exit_code"]


def monitor(
    config: ProjectConfig,
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    log_dir: Path | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Read the window, compare with the reference, log the run, write the latest summary."""
    default_start, default_end = default_window(config.model.monitoring)
    end = end or default_end
    start = start or min(default_start, end)
    if start > end:
        raise registry.RegistryError(f"the window's start {start} is after its end {end}")
    sources = read_dirs(config, settings, log_dir)
    log_dir = Path(log_dir) if log_dir else resolve_log_dir(config, settings)
    client = registry.connect(settings, config.root)
    ref = load_reference(client, config, version, signing_key=registry.signing_key(settings))
    privacy = config.model.prediction_log
    schema = log_schema(ref.schema, drop_fields=privacy.drop_fields, hash_fields=privacy.hash_fields)
    read = read_log_counted(sources, schema, start=start, end=end, model_name=ref.model_name)
    table = read.table
    log.info("read %d logged rows of %s from %s (%s to %s)", table.num_rows, ref.model_name, sources, start, end)
    summary = summarise(table, ref, config, start=start, end=end)
    summary["duplicates_dropped"] = read.duplicates_dropped  # rows an older release wrote twice, counted once
    add_review_queue(summary, config, log_dir)
    summary["mlflow_run_id"] = log_run(client, summary, config, log_dir)
    write_summary(summary_path(config.model.monitoring, log_dir, config.root), summary)
    for alert in summary["alerts"]:
        log.warning("%s: %s", alert["level"], alert["message"])
    log.info("status %s, alert level %s, run %s", summary["status"], summary["alert_level"], summary["mlflow_run_id"])
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    add_window(
        parser, start_help="first UTC date (default: window_days ago)", end_help="last UTC date (default: today)"
    )
    parser.add_argument("--version", default="", help="monitor this version (default: the served one)")
    add_alert_exit_code(parser)
    args = parser.parse_args(argv)
    settings = Settings()
    result: dict[str, Any] = {}

    def job() -> None:
        result.update(
            monitor(
                load_project_config(args.config_dir or settings.config_dir),
                settings,
                start=args.start,
                end=args.end,
                log_dir=args.log_dir,
                version=args.version or None,
            )
        )

    code = run_job(job)
    if code:
        return code
    alerts = [f"{alert['level']}: {alert['message']}" for alert in result.get("alerts", [])]
    notes = []
    if result.get("status") == "no_data":
        notes.append("No logged decision in the window: score applicants first, or widen it with start and end.")
    report_findings(
        "Monitoring",
        alerts=alerts,
        status=str(result.get("status", "")),
        run_id=result.get("mlflow_run_id"),
        notes=notes,
    )
    return args.alert_exit_code if int(result.get("exit_code", 0)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
