"""The performance job: read, join, compute, alert, log, write the summary."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credit_risk import registry
from credit_risk.cases import default_path, open_store
from credit_risk.cases.figures import oversight_figures
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.paths import logged_dates, read_dirs, resolve_log_dir, write_summary
from credit_risk.decision_log.record import log_columns
from credit_risk.outcomes.decisions import count_duplicates
from credit_risk.outcomes.join import matured_decisions, maturity_cutoff
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.performance import OversightFigures, PerformanceSummary, VersionPerformance, Window, summary_path
from pipelines.cli import add_alert_exit_code, add_config_dir, add_window, report_findings, run_job
from pipelines.performance.figures import version_figures
from pipelines.performance.report import log_run, version_alerts

log = logging.getLogger(__name__)

EXIT_ALERT = 2
COLUMNS = log_columns("request_id", "scored_at", "model_version", "probability", "risk_band", "decision").names


def holdout_figures(client: Any, model_name: str, version: str) -> dict[str, float]:
    """The version's holdout figures at training, from the tags training set on it."""
    found = registry.get_version(client, model_name, version)
    if found is None:
        return {}
    out = {}
    for key, value in found.tags.items():
        if key.startswith("metric."):
            try:
                out[key.removeprefix("metric.")] = float(value)
            except ValueError:
                continue
    return out


def _labels(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A text column as a numpy array of its values, through dictionary codes (fast for few distinct values)."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    values = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return values[encoded.indices.fill_null(0).to_numpy()]


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    # months from the day partition's dates: one strftime per distinct day, not per row
    days = table["scored_at"].cast(pa.date32())
    label = table["label"].cast(pa.float64()).fill_null(float("nan"))
    months = pc.strftime(pc.unique(days), format="%Y-%m")
    lookup = pc.index_in(days, value_set=pc.unique(days))
    return {
        "probability": table["probability"].to_numpy(),
        "risk_band": _labels(table["risk_band"]),
        "decision": _labels(table["decision"]),
        "label": label.to_numpy(),
        "month": np.asarray(months.to_pylist(), dtype=object)[lookup.to_numpy()],
    }


def review_figures(config: ProjectConfig, log_dir: Path, joined: pa.Table) -> OversightFigures | None:
    """Overrides, the queue's service level and bad rates by who approved (None: no case store yet)."""
    review = config.model.review
    if review.database_url is None and not default_path(log_dir).is_file():
        return None
    store = open_store(review, log_dir)
    try:
        decided = store.decided()
    finally:
        store.close()
    columns = _columns(joined) if joined.num_rows else {"risk_band": [], "decision": [], "label": np.array([])}
    return oversight_figures(
        decided,
        request_ids=joined["request_id"].to_pylist(),
        bands=columns["risk_band"],
        decisions=columns["decision"],
        labels=columns["label"],
        band_names=[band.name for band in config.model.risk_bands],
    )


def summarise(
    joined: pa.Table,
    config: ProjectConfig,
    *,
    holdout: Any,
    as_of: datetime,
    maturity_days: int,
    start: date | None,
    end: date,
    digest: str,
) -> PerformanceSummary:
    """Per version: figures and alerts; the status and exit code of the whole run."""
    perf = config.model.performance
    versions: dict[str, VersionPerformance] = {}
    alerts = []
    for version in sorted(pc.unique(joined["model_version"]).to_pylist(), key=lambda v: (len(v), v)):
        rows = joined.filter(pc.equal(joined["model_version"], version))
        figures = version_figures(_columns(rows), config.model.risk_bands, holdout(version))
        versions[version] = figures
        alerts += version_alerts(version, figures, perf)
    if not versions:
        status = "no_data"
    elif alerts:
        status = "alert"
    elif all(f.with_outcome < perf.min_outcomes for f in versions.values()):
        status = "insufficient_data"
    else:
        status = "ok"
    return PerformanceSummary(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        as_of=as_of.isoformat(timespec="seconds"),
        maturity_days=maturity_days,
        window=Window(start=start.isoformat() if start else None, end=end.isoformat()),
        model_name=config.model.registry.model_name,
        status=status,
        alerts=alerts,
        exit_code=EXIT_ALERT if alerts else 0,
        outcomes_digest=digest,
        versions=versions,
    )


def performance(
    config: ProjectConfig,
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    maturity_days: int | None = None,
    as_of: datetime | None = None,
    log_dir: Path | None = None,
) -> PerformanceSummary:
    """The whole job; returns the summary it wrote (``exit_code`` 2 when an alert was raised)."""
    as_of = as_of or datetime.now(UTC)
    maturity = config.model.outcomes.maturity_days if maturity_days is None else maturity_days
    if start and end and start > end:
        raise registry.RegistryError(f"the window's start {start} is after its end {end}")
    sources = read_dirs(config, settings, log_dir)
    log_dir = Path(log_dir) if log_dir else resolve_log_dir(config, settings)
    table = OutcomeTable(resolve_outcomes_dir(config, log_dir))
    model_name = config.model.registry.model_name
    duplicates = count_duplicates(sources, model_name=model_name, start=start, end=end)
    joined = matured_decisions(
        sources,
        table,
        as_of=as_of,
        maturity_days=maturity,
        start=start,
        end=end,
        model_name=model_name,
        columns=COLUMNS,
    )
    last = maturity_cutoff(as_of, maturity).date()
    window_end = min(end, last) if end else last
    log.info(
        "%d matured decisions (made by %s), %d with an outcome",
        joined.num_rows,
        window_end,
        joined.num_rows - joined["label"].null_count,
    )
    client = registry.connect(settings, config.root)
    summary = summarise(
        joined,
        config,
        holdout=lambda v: holdout_figures(client, model_name, v),
        as_of=as_of,
        maturity_days=maturity,
        start=start,
        end=window_end,
        digest=table.digest(),
    )
    params = {
        "start": start.isoformat() if start else "",
        "end": window_end.isoformat(),
        "maturity_days": maturity,
        "as_of": summary.as_of,
        "log_dir": str(log_dir),
        "outcomes_sha256": summary.outcomes_digest,
    }
    summary = summary.model_copy(update={"oversight": review_figures(config, log_dir, joined)})
    summary = summary.model_copy(update={"duplicates_dropped": duplicates})
    dates = sorted(day for folder in sources for day in logged_dates(folder))
    if dates:
        first = date.fromisoformat(dates[0])
        matures = first + timedelta(days=maturity)
        summary = summary.model_copy(
            update={"first_decision_on": first.isoformat(), "first_matures_on": matures.isoformat()}
        )
    summary = summary.model_copy(update={"mlflow_run_id": log_run(client, summary, config, params)})
    write_summary(summary_path(config.model.performance, log_dir, config.root), summary.model_dump(mode="json"))
    for alert in summary.alerts:
        log.warning("alert: %s", alert.message)
    log.info("status %s, run %s", summary.status, summary.mlflow_run_id)
    return summary


def _instant(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or timestamp, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _days(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    add_window(
        parser,
        start_help="first decision date (UTC; default: all)",
        end_help="last decision date (default: as of - maturity)",
    )
    parser.add_argument("--maturity-days", type=_days, default=None, help="default: outcomes.maturity_days")
    parser.add_argument("--as-of", type=_instant, default=None, help="the point in time (default: now)")
    add_alert_exit_code(parser)
    args = parser.parse_args(argv)
    settings = Settings()
    result: list[PerformanceSummary] = []

    def job() -> None:
        config = load_project_config(args.config_dir or settings.config_dir)
        result.append(
            performance(
                config,
                settings,
                start=args.start,
                end=args.end,
                maturity_days=args.maturity_days,
                as_of=args.as_of,
                log_dir=args.log_dir,
            )
        )

    code = run_job(job)
    if code or not result:
        return code or 1
    summary = result[0]
    note = summary.maturity_note()
    alerts = [f"version {alert.version}: {alert.message}" for alert in summary.alerts]
    report_findings(
        "The performance report",
        alerts=alerts,
        status=summary.status,
        run_id=summary.mlflow_run_id,
        notes=[note] if note else [],
    )
    return args.alert_exit_code if summary.exit_code else 0
