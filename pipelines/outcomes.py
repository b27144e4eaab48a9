"""Outcomes in: load a file of loan outcomes into the outcomes table.

``mlflow run . -e outcomes -P input=<file.csv|file.parquet> [-P rejects=<file.csv>]``
(or ``python -m pipelines.outcomes --input ...``). Rows: ``request_id`` (or
``applicant_id``), ``outcome`` in the target's own terms (e.g. bad / good) and
``observed_at``. Every row is checked (see ``credit_risk.outcomes.checks``);
refused rows go to the rejects file with their row number and rule, the others
are stored under ``logs/outcomes/``. Loading the same file twice adds nothing;
a changed outcome supersedes the stored one, which stays in the history.
Exits 0 when the file was read (rejects or not), 1 when it could not be.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.paths import read_dirs, resolve_log_dir
from credit_risk.decision_log.privacy import applicant_id_as_logged, hash_key_of
from credit_risk.outcomes.ingest import LoadReport, load_outcomes, read_outcome_file
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.private_files import private_dir, private_open
from pipelines.cli import add_config_dir, run_job

log = logging.getLogger(__name__)


def default_rejects_path(outcomes_dir: Path, source: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return outcomes_dir / "rejects" / f"{source.stem}-{stamp}.csv"


def load_file(
    config: ProjectConfig,
    settings: Settings,
    *,
    source: Path,
    rejects: Path | None = None,
    log_dir: Path | None = None,
) -> LoadReport:
    """Check and store one file; write the refused rows (if any) to ``rejects``."""
    sources = read_dirs(config, settings, log_dir)
    log_dir = Path(log_dir) if log_dir else resolve_log_dir(config, settings)
    outcomes_dir = resolve_outcomes_dir(config, log_dir)
    raw = read_outcome_file(source)
    report = load_outcomes(
        raw,
        log_dir=sources,
        model_name=config.model.registry.model_name,
        table=OutcomeTable(outcomes_dir),
        target=config.features.target,
        source=source.name,
        applicant_id=applicant_id_as_logged(config.model.prediction_log, hash_key_of(settings)),
    )
    if len(report.rejects):
        path = rejects or default_rejects_path(outcomes_dir, source)
        private_dir(path.parent)
        with private_open(path, "w", newline="") as handle:  # rejected rows name applicants too
            report.rejects.to_csv(handle, index=False)
        by_rule = report.rejects["rule"].value_counts().to_dict()
        log.warning("%d row(s) rejected %s: see %s", len(report.rejects), by_rule, path)
    log.info("%s: %s (table %s)", source, report.line(), outcomes_dir)
    print(report.line())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet file of outcomes")
    parser.add_argument("--rejects", default="", help="where refused rows go (default: logs/outcomes/rejects/)")
    parser.add_argument("--log-dir", default="", help="prediction log folder (default: as the service)")
    args = parser.parse_args(argv)
    settings = Settings()
    return run_job(
        lambda: load_file(
            load_project_config(args.config_dir or settings.config_dir),
            settings,
            source=args.input,
            rejects=Path(args.rejects) if args.rejects else None,
            log_dir=Path(args.log_dir) if args.log_dir else None,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
