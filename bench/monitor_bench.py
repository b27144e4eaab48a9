"""Drift monitor benchmark: 1M logged rows, timed end to end.

``python -m bench.monitor_bench [--rows 1000000] [--files 1000]``. Trains a
small model into a throw-away SQLite store and promotes it, generates
synthetic applicants (``pipelines.synthetic``), scores them with the model and
writes them as prediction-log files with the writer's own Arrow schema (about
``rows / files`` rows per file over 7 daily partitions, like a service
flushing every second), then times the monitor job: reading the window,
all figures, the MLflow run with its plots, and the latest summary.
Target (issue 4): 1M rows within 30 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from credit_risk import registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ProjectConfig, Settings, load_project_config
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.decision_log.format import LOG_SCHEMA_VERSION, log_schema
from credit_risk.decision_log.reader import read_log
from credit_risk.scoring import ScoringModel
from pipelines.monitor import load_reference, summarise
from pipelines.monitor import monitor as run_monitor
from pipelines.synthetic import generate_applicants

FAST_TRAINING = {
    "cv": {"folds": 3, "repeats": 1},
    "candidates": {"xgboost": [{"max_depth": 3, "learning_rate": 0.1, "n_estimators": 100}]},
}
DAYS = 7


def trained_store(tmp: Path) -> tuple[ProjectConfig, Settings]:
    """A throw-away store with one small model in production (same code path as ``make train``)."""
    from pipelines.promote import promote
    from pipelines.train import train

    config_dir = tmp / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config_dir)
    training = yaml.safe_load((config_dir / "training.yaml").read_text())
    training.update(FAST_TRAINING)
    training["data"]["path"] = str(PROJECT_ROOT / training["data"]["path"])  # artifacts go under tmp, data stays
    (config_dir / "training.yaml").write_text(yaml.safe_dump(training))
    settings = Settings(MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}", CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=tmp)
    train(config, settings)
    promote(config, settings, reason="monitor benchmark")
    return config, settings


def logged_table(config: ProjectConfig, settings: Settings, rows: int, tmp: Path) -> pa.Table:
    """``rows`` synthetic applicants scored by the served version, as prediction-log rows."""
    client = registry.connect(settings, config.root)
    version = registry.resolve(client, config.model.registry)
    model = ScoringModel.load(
        registry.scoring_dir(registry.download_version(client, version.name, version.version, tmp)), threads=2
    )
    engine = DecisionEngine(model, config.model)
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=rows, seed=7)
    p = model.predict_proba(model.encoder.encode_frame(frame))
    schema = log_schema(config.features)
    start = datetime.now(UTC) - timedelta(days=DAYS - 1)
    rng = np.random.default_rng(7)
    scored_at = np.sort(rng.integers(0, (DAYS - 1) * 86_400_000_000, size=rows)) + int(start.timestamp() * 1e6)
    offsets = np.arange(0, 2 * rows + 1, 2, dtype=np.int32)  # two reason codes per row
    columns = {
        "log_schema_version": pa.array(np.full(rows, LOG_SCHEMA_VERSION, dtype=np.int16)),
        "request_id": pa.array([f"req-{i}" for i in range(rows)]),
        "batch_id": pa.nulls(rows, pa.string()),
        "scored_at": pa.array(scored_at, pa.timestamp("us", tz="UTC")),
        "model_name": pa.array([version.name] * rows),
        "model_version": pa.array([str(version.version)] * rows),
        **{spec.name: pa.array(frame[spec.name].to_numpy()) for spec in config.features.fields},
        "probability": pa.array(p),
        "score": pa.array(engine.scores(p)),
        "risk_band": pa.array(engine.bands(p)),
        "decision": pa.array(engine.decisions(p)),
        "decision_policy_version": pa.array([config.model.decision.policy_version] * rows),
        "reasons": pa.ListArray.from_arrays(offsets, pa.array(np.tile(["DUR", "CHK"], rows))),
        "latency_ms": pa.array(rng.gamma(2.0, 1.5, size=rows)),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def write_files(table: pa.Table, log_dir: Path, files: int) -> None:
    """Files of equal size in their UTC-date partitions, as the writer names them."""
    days = table.column("scored_at").cast(pa.date32()).to_numpy()
    for index, chunk in enumerate(np.array_split(np.arange(table.num_rows), files)):
        day = str(days[chunk[0]])
        part = table.take(pa.array(chunk))
        # a chunk spanning midnight is split as the writer would
        for day_value in np.unique(days[chunk]):
            mask = days[chunk] == day_value
            folder = log_dir / f"date={day_value}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(part.filter(pa.array(mask)), folder / f"part-bench-0-{index:09d}-{day}.parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        config, settings = trained_store(tmp)
        t1 = time.perf_counter()
        table = logged_table(config, settings, args.rows, tmp)
        log_dir = tmp / "logs" / "predictions"
        write_files(table, log_dir, args.files)
        size_mib = sum(p.stat().st_size for p in log_dir.rglob("*.parquet")) / 2**20
        t2 = time.perf_counter()
        print(
            f"setup: model {t1 - t0:.1f}s, {args.rows} rows in {args.files} files ({size_mib:.0f} MiB) {t2 - t1:.1f}s"
        )

        started = time.perf_counter()
        summary = run_monitor(config, settings, log_dir=log_dir)
        total = time.perf_counter() - started

        # the parts, for the record: reading alone, figures alone
        reference_schema = log_schema(config.features)
        end = datetime.now(UTC).date()
        start = end - timedelta(days=DAYS - 1)
        r0 = time.perf_counter()
        window = read_log(log_dir, reference_schema, start=start, end=end, model_name=summary["model"]["name"])
        r1 = time.perf_counter()

        ref = load_reference(registry.connect(settings, config.root), config, None)
        r2 = time.perf_counter()
        summarise(window, ref, config, start=start, end=end)
        r3 = time.perf_counter()
    print(
        f"monitor over {summary['volume']} logged rows: {total:.2f}s end to end (target <= 30 s); "
        f"read {r1 - r0:.2f}s, figures {r3 - r2:.2f}s; status {summary['status']}, "
        f"PSI(probability) {summary['psi']['probability']['psi']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
