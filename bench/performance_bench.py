"""Realized-performance benchmark: 1M logged decisions and their outcomes, ingest + join + report.

``python -m bench.performance_bench [--rows 1000000] [--files 1000]``. Trains a
small model into a throw-away SQLite store and promotes it, scores synthetic
applicants with it and writes them as prediction-log files (``bench.monitor_bench``'s
way, dated over the 150 days before the maturity window), draws an outcome for
every booked loan (approved, and half of the referred) from the model's own
probabilities, writes them as one Parquet file, then times:

- ingest: the outcomes job's load (read, check every row against the logged
  decisions, store atomically);
- report: the performance job (join, every figure per version and vintage,
  alerts, the MLflow run with its plots, the summary).

Target (issue 13): ingest + join + report within 30 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.monitor_bench import trained_store, write_files
from credit_risk import registry
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.decision_log.format import LOG_SCHEMA_VERSION, log_schema
from credit_risk.scoring import ScoringModel
from pipelines.outcomes import load_file
from pipelines.performance.job import performance
from pipelines.synthetic import generate_applicants

MATURITY_DAYS = 30
SPAN_DAYS = 150


def decisions_and_outcomes(config, settings, rows: int, tmp: Path) -> tuple[pa.Table, pa.Table]:
    """``rows`` scored applicants as log rows, and an outcome per booked loan."""
    client = registry.connect(settings, config.root)
    version = registry.resolve(client, config.model.registry)
    folder = registry.scoring_dir(registry.download_version(client, version.name, version.version, tmp))
    model = ScoringModel.load(folder, threads=2)
    engine = DecisionEngine(model, config.model)
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=rows, seed=11)
    p = model.predict_proba(model.encoder.encode_frame(frame))
    decisions = np.asarray(engine.decisions(p))
    rng = np.random.default_rng(11)
    first = datetime.now(UTC) - timedelta(days=MATURITY_DAYS + SPAN_DAYS)
    micros = np.sort(rng.integers(0, SPAN_DAYS * 86_400_000_000, size=rows)) + int(first.timestamp() * 1e6)
    offsets = np.arange(0, 2 * rows + 1, 2, dtype=np.int32)
    request_ids = np.array([f"req-{i}" for i in range(rows)], dtype=object)
    log_rows = pa.Table.from_pydict(
        {
            "log_schema_version": pa.array(np.full(rows, LOG_SCHEMA_VERSION, dtype=np.int16)),
            "request_id": pa.array(request_ids, pa.string()),
            "batch_id": pa.nulls(rows, pa.string()),
            "applicant_id": pa.nulls(rows, pa.string()),
            "scored_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "model_name": pa.array([version.name] * rows),
            "model_version": pa.array([str(version.version)] * rows),
            **{spec.name: pa.array(frame[spec.name].to_numpy()) for spec in config.features.fields},
            "probability": pa.array(p),
            "score": pa.array(engine.scores(p)),
            "risk_band": pa.array(engine.bands(p)),
            "decision": pa.array(decisions),
            "decision_policy_version": pa.array([config.model.decision.policy_version] * rows),
            "reasons": pa.ListArray.from_arrays(offsets, pa.array(np.tile(["DUR", "CHK"], rows))),
            "latency_ms": pa.array(rng.gamma(2.0, 1.5, size=rows)),
        },
        schema=log_schema(config.features),
    )
    booked = (decisions == "approve") | ((decisions == "review") & (rng.random(rows) < 0.5))
    bad = rng.random(rows) < p
    target = config.features.target
    observed = micros + rng.integers(1, MATURITY_DAYS, size=rows) * 86_400_000_000
    outcomes = pa.table(
        {
            "request_id": pa.array(request_ids[booked], pa.string()),
            "outcome": pa.array(np.where(bad[booked], target.event, target.non_event), pa.string()),
            "observed_at": pa.array(observed[booked], pa.timestamp("us", tz="UTC")),
        }
    )
    return log_rows, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="performance-bench-") as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        config, settings = trained_store(tmp)
        log_rows, outcomes = decisions_and_outcomes(config, settings, args.rows, tmp)
        log_dir = tmp / "logs" / "predictions"
        write_files(log_rows, log_dir, args.files)
        outcome_file = tmp / "outcomes.parquet"
        pq.write_table(outcomes, outcome_file)
        print(
            f"setup {time.perf_counter() - t0:.1f}s: {log_rows.num_rows} decisions in {args.files} files, "
            f"{outcomes.num_rows} outcomes"
        )

        i0 = time.perf_counter()
        report = load_file(config, settings, source=outcome_file, log_dir=log_dir)
        i1 = time.perf_counter()
        summary = performance(config, settings, maturity_days=MATURITY_DAYS, log_dir=log_dir)
        i2 = time.perf_counter()
        again = load_file(config, settings, source=outcome_file, log_dir=log_dir)
        i3 = time.perf_counter()
    [(version, figures)] = summary.versions.items()
    print(
        f"ingest {i1 - i0:.2f}s ({report.line()}); join + report {i2 - i1:.2f}s; "
        f"total {i2 - i0:.2f}s (target <= 30 s)\n"
        f"v{version}: {figures.decisions} matured decisions, {figures.with_outcome} with an outcome, "
        f"AUC {figures.auc:.3f}, KS {figures.ks:.3f}, Brier {figures.brier:.3f}, status {summary.status}\n"
        f"reloading the same file: {i3 - i2:.2f}s ({again.line()})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
