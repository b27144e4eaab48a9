"""The batch job: resolve and verify the version, score with the chosen engine, log the MLflow run."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.cases.policy import automation_mode
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.lifecycle import ledger
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel
from pipelines.batch.local import score_local
from pipelines.batch.model import DecisionColumns
from pipelines.batch.options import (
    BatchOptions,
    BatchSummary,
    refuse_model_code,
    refuse_output_over_input,
    rejects_path,
)
from pipelines.batch.reader import input_files
from pipelines.batch.spark import score_spark, spark_session
from pipelines.cli import add_config_dir, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DESCRIPTION = """Batch scoring: re-score a portfolio (CSV or Parquet, a file or a folder) with a registered version.

``mlflow run . -e batch_score -P input=... -P output=... [-P engine=local|spark] [-P model=production|N]``
(or ``python -m pipelines.batch_score --input ... --output ...``).

The version is resolved through the registry (an alias, or a version number),
its artifact digest is checked against the ``artifact_sha256`` tag as the
service does, and scores, bands, decisions and reason codes come from the
same policy and the same TreeSHAP as the service's. While automation is paused
(the ledger's stop switch, read when the job starts) every decision in the output
is a referral; the output's metadata says ``automation: paused``, and the model's
own decision follows from the probability and the policy.

- ``local`` streams the input in chunks (memory bounded by the chunk size),
  validates each chunk with the schema's rule table, encodes straight from
  Arrow and writes row number, id, probability, score, band, decision and
  reason codes to one Parquet file (with ``recourse=true``, a ``recourse``
  column: what would change each decline or referral, as JSON). Bad rows go
  to ``<output>.rejects.parquet`` with their row number and the field and rule
  they break.
- ``spark`` runs the same reader, rule table, scoring, reasons and recourse in Spark's
  tasks on the configured master (``local[*]`` by default): a Parquet input is
  read by the tasks, row groups planned from the footers, a CSV input is read
  by Spark; each task writes its rows, and the driver commits them into a
  Parquet folder (the same output as the local engine's) and its rejects
  folder. ``--spark-scorer mlflow`` uses ``mlflow.pyfunc.spark_udf`` instead
  (no reasons, no recourse); it imports the version's own ``pyfunc_model.py`` on the
  executors, so it is refused unless ``--allow-model-code true``.

Each run logs ``rows_per_second`` (read, validate, score, write) to MLflow.
"""


def batch_score(
    config: ProjectConfig, settings: Settings, options: BatchOptions, *, spark: SparkSession | None = None
) -> BatchSummary:
    """Resolve and verify the version, score the input with the chosen engine, log the run."""
    refuse_model_code(options)
    reg = config.model.registry
    client = registry.connect(settings, config.root)
    version = registry.resolve(client, reg, options.model)
    log.info(
        "scoring %s with %s version %s (engine %s)", options.input, reg.model_name, version.version, options.engine
    )
    reasons = options.reasons and (options.engine == "local" or options.spark_scorer == "project")
    if options.recourse and options.engine == "spark" and options.spark_scorer != "project":
        raise DataValidationError(
            "recourse=true needs the project's scorer: spark_scorer=mlflow gives probabilities only; "
            "use spark_scorer=project (the default) or --engine local"
        )
    refuse_output_over_input(options, input_files(options.input)[0])
    with tempfile.TemporaryDirectory(prefix="batch-model-") as tmp:
        model_dir = registry.fetch_verified(
            client,
            version,
            Path(tmp),
            signing_key=registry.signing_key(settings),
            require_signed=config.model.security.require_signed_models,
        )
        model = ScoringModel.load(registry.scoring_dir(model_dir), threads=2)
        # the driver scores only on the local engine; Spark executors build their own
        driver_reasons = reasons and options.engine == "local"
        # the stop switch as the ledger holds it when the job starts: paused, every row is referred
        automation = automation_mode(ledger.read_controls(client, reg.model_name))
        if automation == "paused":
            log.warning("automation is paused: every decision in the output is a referral")
        columns = DecisionColumns(
            model,
            config.model,
            reasons=driver_reasons,
            paused=automation == "paused",
            recourse=options.recourse and options.engine == "local",
        )
        # in the scored files' schema, on either engine
        metadata = {
            "model_name": reg.model_name,
            "model_version": str(version.version),
            "decision_policy_version": config.model.decision.policy_version,
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "automation": automation,
        }
        if options.engine == "local":
            started = time.perf_counter()
            rows, rejected = score_local(model, columns, options, metadata=metadata)
            seconds = time.perf_counter() - started
        else:
            if options.reasons and not reasons:
                log.info("reason codes are not computed by mlflow's spark_udf; use --spark-scorer project")
            own = spark is None
            session = spark or spark_session(options.spark_master, options.spark_conf)
            try:
                started = time.perf_counter()
                rows, rejected = score_spark(session, model_dir, model, columns, options, metadata=metadata)
                seconds = time.perf_counter() - started
            finally:
                if own:
                    session.stop()
    summary = BatchSummary(
        engine=options.engine,
        model_name=reg.model_name,
        model_version=str(version.version),
        rows_read=rows,
        rows_scored=rows - rejected,
        rows_rejected=rejected,
        seconds=seconds,
        output=options.output,
        rejects=rejects_path(options.output),
        reasons=reasons,
    )
    log_summary(client, config, summary, options)
    return summary


def log_summary(client: MlflowClient, config: ProjectConfig, summary: BatchSummary, options: BatchOptions) -> None:
    """One tracking run per batch: which version scored what, how many rows, how fast (either engine)."""
    experiment_id = registry.ensure_experiment(client, config.model.registry.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"batch_score v{summary.model_version}"):
        registry.log_job_params(
            {
                "input": str(options.input),
                "output": str(options.output),
                "engine": options.engine,
                "model": options.model,
                "model_version": summary.model_version,
                "reasons": summary.reasons,
                **({"spark_scorer": options.spark_scorer} if options.engine == "spark" else {}),
            }
        )
        mlflow.log_metrics(
            {
                "rows_read": summary.rows_read,
                "rows_scored": summary.rows_scored,
                "rows_rejected": summary.rows_rejected,
                "seconds": summary.seconds,
                "rows_per_second": summary.rows_per_second,
            }
        )
    log.info(
        "scored %d rows (%d rejected) with version %s in %.1fs (%.0f rows/s): %s",
        summary.rows_scored,
        summary.rows_rejected,
        summary.model_version,
        summary.seconds,
        summary.rows_per_second,
        summary.output,
    )


def _bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes"}:
        return True
    if text.lower() in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet file, or a folder of them")
    parser.add_argument("--output", type=Path, required=True, help="Parquet file (local) or folder (spark)")
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument("--model", default="production", help="an alias (production) or a version number")
    parser.add_argument("--reasons", type=_bool, default=True, help="reason codes per row")
    parser.add_argument(
        "--recourse", type=_bool, default=False, help="what would change each decline or referral (JSON column)"
    )
    parser.add_argument("--id-column", default="applicant_id", help="carried through to the output if present")
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument(
        "--spark-scorer", choices=["project", "mlflow"], default="project", help="spark: project scoring or spark_udf"
    )
    parser.add_argument(
        "--allow-model-code",
        type=_bool,
        default=False,
        help="spark_scorer mlflow: allow importing the version's own pyfunc_model.py on the executors",
    )
    parser.add_argument("--spark-conf", type=_conf, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    settings = Settings()
    options = BatchOptions(
        input=args.input,
        output=args.output,
        engine=args.engine,
        model=args.model,
        reasons=args.reasons,
        recourse=args.recourse,
        id_column=args.id_column,
        chunk_rows=args.chunk_rows,
        spark_master=args.spark_master,
        spark_conf=dict(args.spark_conf),
        spark_scorer=args.spark_scorer,
        allow_model_code=args.allow_model_code,
        progress=not args.no_progress,
    )
    return run_job(lambda: batch_score(load_project_config(args.config_dir or settings.config_dir), settings, options))


if __name__ == "__main__":
    raise SystemExit(main())
