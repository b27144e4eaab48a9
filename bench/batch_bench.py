"""Batch scoring benchmark: local engine with and without reasons, raw ``Booster.inplace_predict``, Spark.

``python -m bench.batch_bench [--rows 100000 1000000] [--candidate fast] [--no-spark] [--spark-udf] [--baseline]``

Trains one model in a throw-away SQLite store (the first XGBoost candidate of
``config/training.yaml``, or ``--candidate fast`` for the test suite's small
model), promotes it, writes seeded synthetic applicants to Parquet, then:

- scores each file with the local engine in a child process, with and without
  reason codes, timing the scoring (read, validate, encode, predict, policy,
  write) and reporting the child's peak RSS (VmHWM, model and libraries included);
- times raw ``Booster.inplace_predict`` on the pre-encoded matrix of the
  largest file (same thread count), and prints the ratio;
- scores the largest file on Spark in local mode (``local[*]``), reasons on,
  with the project's scoring (the tasks read the row groups, score and write
  them), and times it after the session is up: the session's first job (its
  Python workers start, import the scoring modules and load the model; the
  JVM compiles its code) and the same
  job again on that session (``--spark-udf`` adds MLflow's ``spark_udf``
  route, no reasons);
- ``--baseline`` adds the smallest file with reasons from XGBoost's
  ``pred_contribs`` (the engine's path before the TreeSHAP tables);
- prints the ratios of one run: local with / without reasons, Spark / local.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from credit_risk import registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, Settings, load_project_config
from credit_risk.data import load_applicants
from credit_risk.scoring import ScoringModel
from pipelines import batch_score as bs
from pipelines.synthetic import generate_applicants

THREADS = 2  # the local engine's ScoringModel(threads=2)


def prepare_store(tmp: Path, candidate: str) -> Settings:
    """A config copy with one candidate and a short CV, a trained and promoted model in SQLite."""
    from pipelines.promote import promote
    from pipelines.train import train

    config_dir = tmp / "config"
    config_dir.mkdir()
    for path in DEFAULT_CONFIG_DIR.glob("*.yaml"):
        (config_dir / path.name).write_text(path.read_text())
    training = yaml.safe_load((config_dir / "training.yaml").read_text())
    if candidate == "fast":
        xgb = {"max_depth": 2, "learning_rate": 0.1, "n_estimators": 80, "subsample": 0.9, "colsample_bytree": 0.9}
    else:
        # the default grid's first XGBoost candidate (config/training.yaml states only what differs)
        xgb = load_project_config(config_dir, root=PROJECT_ROOT).training.candidates.xgboost[0].model_dump()
    training["cv"] = {"folds": 3, "repeats": 1}
    training["candidates"] = {"logistic_regression": [], "xgboost": [xgb]}
    (config_dir / "training.yaml").write_text(yaml.safe_dump(training, sort_keys=False))
    settings = Settings(MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}", CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    version = train(config, settings)
    promote(config, settings, reason="batch benchmark")
    print(f"model: xgboost {xgb} (version {version.version})")
    return settings


def write_applicants(settings: Settings, rows: int, path: Path) -> None:
    config = load_project_config(settings.config_dir, root=PROJECT_ROOT)
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=rows, seed=rows)
    frame.insert(0, "applicant_id", np.arange(rows, dtype=np.int64))
    frame.to_parquet(path, index=False)  # pyarrow's default: one row group up to 1Mi rows


def load_model(settings: Settings, tmp: Path) -> tuple[Any, ScoringModel, Path]:
    config = load_project_config(settings.config_dir, root=PROJECT_ROOT)
    client = registry.connect(settings, PROJECT_ROOT)
    version = registry.resolve(client, config.model.registry, "production")
    model_dir = registry.fetch_verified(client, version, tmp)
    return config, ScoringModel.load(registry.scoring_dir(model_dir), threads=THREADS), model_dir


# ------------------------------------------------------------------ child processes


def peak_rss_mb() -> float:
    """This process image's peak resident set (VmHWM).

    Not ``getrusage(RUSAGE_CHILDREN)``: Linux carries ``ru_maxrss`` across
    ``exec``, so a child forked from a parent holding a large frame would
    report the parent's peak. VmHWM belongs to the new image only.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(argv: list[str]) -> int:
    """Run one scoring in this (child) process; print its timing as JSON."""
    job = json.loads(argv[0])
    settings = Settings(MLFLOW_TRACKING_URI=job["uri"], CREDIT_RISK_CONFIG_DIR=job["config_dir"])
    with tempfile.TemporaryDirectory() as tmp:
        config, model, model_dir = load_model(settings, Path(tmp))
        columns = bs.DecisionColumns(model, config.model, reasons=job["reasons"])
        if job.get("baseline"):
            columns.engine.explain = model.field_contributions  # XGBoost's pred_contribs
        options = bs.BatchOptions(
            input=Path(job["input"]),
            output=Path(job["output"]),
            engine=job["engine"],
            reasons=job["reasons"],
            spark_scorer=job.get("spark_scorer", "project"),
            progress=False,
        )
        extra: dict[str, float] = {}
        if job["engine"] == "local":
            started = time.perf_counter()
            rows, _ = bs.score_local(model, columns, options, metadata={})
            seconds = time.perf_counter() - started
        else:
            spark = bs.spark_session("local[*]", {"spark.driver.memory": "4g"})
            spark.range(1).count()  # the JVM and session are up before timing
            started = time.perf_counter()
            rows, _ = bs.score_spark(spark, model_dir, model, columns, options, metadata={})
            seconds = time.perf_counter() - started
            # the same job again on the session: Python workers up, modules imported, the JVM's code compiled
            started = time.perf_counter()
            bs.score_spark(spark, model_dir, model, columns, options, metadata={})
            extra["second_seconds"] = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), **extra}))
    return 0


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`child` in a subprocess and return its figures."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.batch_bench", "--child", json.dumps(job)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    if proc.wait() != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def raw_rows_per_second(settings: Settings, path: Path, tmp: Path, repeats: int = 3) -> float:
    """Raw ``inplace_predict`` on the pre-encoded matrix of ``path``: best of ``repeats``."""
    _, model, _ = load_model(settings, tmp)
    encoder = bs.ChunkEncoder(model)
    matrix = np.concatenate([encoder.encode(b).matrix.copy() for b in pq.ParquetFile(path).iter_batches(65_536)])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model.booster.inplace_predict(matrix)
        best = min(best, time.perf_counter() - started)
    return len(matrix) / best


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--candidate", choices=["production", "fast"], default="production")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--spark-udf", action="store_true", help="also time MLflow's spark_udf route (no reasons)")
    parser.add_argument("--baseline", action="store_true", help="also time reasons from XGBoost's pred_contribs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as name:
        tmp = Path(name)
        settings = prepare_store(tmp, args.candidate)
        common = {"uri": settings.mlflow_tracking_uri, "config_dir": str(settings.config_dir)}
        results = []
        for rows in sorted(args.rows):
            source = tmp / f"applicants-{rows}.parquet"
            write_applicants(settings, rows, source)
            for reasons in (False, True):
                job = {**common, "input": str(source), "output": str(tmp / "out.parquet"), "engine": "local"}
                result = run_child({**job, "reasons": reasons})
                results.append({"rows": rows, "reasons": reasons, "how": "local", **result})
        smallest, largest = min(args.rows), max(args.rows)
        if args.baseline:
            job = {**common, "input": str(tmp / f"applicants-{smallest}.parquet"), "output": str(tmp / "out.parquet")}
            result = run_child({**job, "engine": "local", "reasons": True, "baseline": True})
            results.append({"rows": smallest, "reasons": True, "how": "local, pred_contribs", **result})
        spark_runs = [("project", True)] + ([("mlflow", False)] if args.spark_udf else [])
        for scorer, reasons in [] if args.no_spark else spark_runs:
            job = {**common, "input": str(tmp / f"applicants-{largest}.parquet"), "output": str(tmp / "spark-out")}
            result = run_child({**job, "engine": "spark", "reasons": reasons, "spark_scorer": scorer})
            how = f"spark local[*], {'project' if scorer == 'project' else 'spark_udf'}"
            results.append({"rows": largest, "reasons": reasons, "how": f"{how}, first job", **result})
            second = {**result, "seconds": result["second_seconds"]}
            results.append({"rows": largest, "reasons": reasons, "how": f"{how}, second job", **second})
        raw = raw_rows_per_second(settings, tmp / f"applicants-{largest}.parquet", tmp / "raw")
        print(f"\nraw Booster.inplace_predict on the pre-encoded matrix ({largest:,} rows): {raw:,.0f} rows/s")
        print(f"{'rows':>10} {'reasons':>8} {'seconds':>8} {'rows/s':>12} {'of raw':>7} {'peak RSS':>9}  engine")
        for r in results:
            r["rate"] = r["rows"] / r["seconds"]
            print(
                f"{r['rows']:>10,} {r['reasons']!s:>8} {r['seconds']:>8.2f} {r['rate']:>12,.0f} "
                f"{r['rate'] / raw:>7.1%} {r['peak_rss_mb']:>7.0f}MB  {r['how']}"
            )
        print_ratios(results, largest, smallest)
    return 0


def print_ratios(results: list[dict[str, Any]], largest: int, smallest: int) -> None:
    """The ratios the targets are set in, from this one run (Spark: session start excluded; first and second job)."""

    def rate(rows: int, reasons: bool, how: str) -> float | None:
        found = [r["rate"] for r in results if r["rows"] == rows and r["reasons"] == reasons and r["how"] == how]
        return found[0] if found else None

    local_with, local_without = rate(largest, True, "local"), rate(largest, False, "local")
    print(f"\nratios on {largest:,} rows ({os.cpu_count()} cores):")
    if local_with and local_without:
        print(f"  {'local, reasons on / off:':<52} {local_with / local_without:6.1%}")
    for job in ("first job", "second job"):
        spark = rate(largest, True, f"spark local[*], project, {job}")
        if spark and local_with:
            print(f"  {'spark (reasons) / local (reasons), ' + job + ':':<52} {spark / local_with:6.1%}")
        udf = rate(largest, False, f"spark local[*], spark_udf, {job}")
        if udf and local_without:
            print(f"  {'spark_udf (no reasons) / local (off), ' + job + ':':<52} {udf / local_without:6.1%}")
    baseline, new = rate(smallest, True, "local, pred_contribs"), rate(smallest, True, "local")
    if baseline and new:
        print(f"  reasons: TreeSHAP tables / pred_contribs ({smallest:,} rows): {new / baseline:5.1f}x")


if __name__ == "__main__":
    raise SystemExit(main())
