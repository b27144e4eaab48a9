"""Decision lookup: a request id in a 30-day log of 1M decisions, through the index, against a scan.

``python -m bench.lookup_bench [--rows 1000000] [--days 30] [--rows-per-file 10000] [--lookups 2000]``

Writes a synthetic log in the service's own format (the core's ``log_schema``, hive date
partitions, zstd Parquet, an ``applicant_id`` column), builds the decision index from it, then
times lookups of random request ids the way ``GET /v1/decisions/{id}`` makes them (index search
plus one file read), lookups of applicants' decisions, an incremental refresh with nothing new,
and, as the baseline, a few lookups by a filtered scan of the whole dataset (what a query engine
over the Parquet files without an index has to do: random ids defeat min/max statistics).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from credit_risk.audit.index import APPLICANT_COLUMN, DecisionIndex
from credit_risk.config import load_project_config
from credit_risk.decision_log.format import LOG_SCHEMA_VERSION, log_schema
from credit_risk.decision_log.paths import partition_dir
from credit_risk.schema import FeatureSchema


def synthetic_schema(features: FeatureSchema) -> pa.Schema:
    """The log's schema with an applicant id (as the service logs it when a request names one)."""
    schema = log_schema(features)
    if APPLICANT_COLUMN not in schema.names:
        schema = schema.insert(schema.get_field_index("model_version") + 1, pa.field(APPLICANT_COLUMN, pa.string()))
    return schema


def _column(field: pa.Field, spec: Any, n: int, rng: np.random.Generator) -> pa.Array:
    if spec.type == "categorical":
        codes = np.asarray(spec.codes, dtype=object)
        return pa.array(codes[rng.integers(0, len(codes), n)], type=pa.string())
    return pa.array(rng.integers(spec.min, spec.max + 1, n), type=pa.int64())


def write_synthetic_log(
    log_dir: Path,
    features: FeatureSchema,
    *,
    rows: int,
    days: int,
    rows_per_file: int,
    applicants: int | None = None,
    end: datetime | None = None,
    seed: int = 0,
) -> list[str]:
    """Write ``rows`` decisions spread evenly over ``days`` UTC days; returns the request ids in order."""
    rng = np.random.default_rng(seed)
    schema = synthetic_schema(features)
    end = end or datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    span_us = int((end - start).total_seconds() * 1e6)
    times_us = np.sort(rng.integers(0, span_us, rows)) + int(start.timestamp() * 1e6)
    request_ids = [uuid.UUID(int=int(x)).hex for x in rng.integers(0, 2**63, rows, dtype=np.int64)]
    applicants = applicants or max(rows // 5, 1)
    applicant_ids = [f"app-{i:08d}" for i in rng.integers(0, applicants, rows)]
    by_name = features.by_name
    probability = rng.random(rows)
    for first in range(0, rows, rows_per_file):
        last = min(first + rows_per_file, rows)
        n = last - first
        day = datetime.fromtimestamp(times_us[first] / 1e6, UTC).date().isoformat()
        columns = []
        for field in schema:
            name = field.name
            if name == "log_schema_version":
                columns.append(pa.array(np.full(n, LOG_SCHEMA_VERSION), type=pa.int16()))
            elif name == "request_id":
                columns.append(pa.array(request_ids[first:last], type=pa.string()))
            elif name == APPLICANT_COLUMN:
                columns.append(pa.array(applicant_ids[first:last], type=pa.string()))
            elif name == "scored_at":
                columns.append(pa.array(times_us[first:last], type=pa.int64()).cast(field.type))
            elif name == "model_name":
                columns.append(pa.array(["credit-risk"] * n, type=pa.string()))
            elif name == "model_version":
                columns.append(pa.array(["1"] * n, type=pa.string()))
            elif name == "probability":
                columns.append(pa.array(probability[first:last], type=pa.float64()))
            elif name in by_name:
                columns.append(_column(field, by_name[name], n, rng))
            else:
                columns.append(pa.nulls(n, type=field.type))
        folder = partition_dir(log_dir, day)
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_arrays(columns, schema=schema)
        pq.write_table(table, folder / f"part-bench-{first // rows_per_file:06d}.parquet", compression="zstd")
    return request_ids


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def run(*, rows: int, days: int, rows_per_file: int, lookups: int, scans: int, folder: Path) -> dict[str, Any]:
    features = load_project_config().features
    log_dir = folder / "predictions"
    started = time.perf_counter()
    ids = write_synthetic_log(log_dir, features, rows=rows, days=days, rows_per_file=rows_per_file)
    written = time.perf_counter() - started
    index = DecisionIndex(log_dir, folder / "audit" / "decisions.sqlite", refresh_seconds=3600)
    started = time.perf_counter()
    index.refresh()
    built = time.perf_counter() - started
    rng = np.random.default_rng(1)
    by_id = []
    for i in rng.integers(0, len(ids), lookups):
        t0 = time.perf_counter()
        record = index.find(ids[i])
        by_id.append(time.perf_counter() - t0)
        assert record is not None and record["request_id"] == ids[i]
    by_applicant = []
    end = datetime.now(UTC) + timedelta(days=1)
    for i in rng.integers(0, max(rows // 5, 1), max(lookups // 10, 1)):
        t0 = time.perf_counter()
        index.by_applicant(f"app-{i:08d}", start=end - timedelta(days=days + 2), end=end, limit=20, offset=0)
        by_applicant.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    index.refresh()
    refresh_nothing_new = time.perf_counter() - t0
    dataset = ds.dataset(log_dir, format="parquet", partitioning="hive")
    scan = []
    for i in rng.integers(0, len(ids), scans):
        t0 = time.perf_counter()
        table = dataset.to_table(filter=ds.field("request_id") == ids[i])
        scan.append(time.perf_counter() - t0)
        assert table.num_rows == 1
    size = sum(p.stat().st_size for p in log_dir.rglob("*.parquet"))
    return {
        "rows": rows,
        "days": days,
        "files": rows // rows_per_file + (rows % rows_per_file > 0),
        "log_mb": round(size / 1e6, 1),
        "index_mb": round((folder / "audit" / "decisions.sqlite").stat().st_size / 1e6, 1),
        "lookup_copies_mb": round(sum(p.stat().st_size for p in index.copies.rglob("*.parquet")) / 1e6, 1),
        "write_seconds": round(written, 1),
        "index_build_seconds": round(built, 1),
        "refresh_nothing_new_ms": round(refresh_nothing_new * 1000, 2),
        "lookup_by_request_id": _percentiles(by_id),
        "lookup_by_applicant_page": _percentiles(by_applicant),
        "scan_without_index": _percentiles(scan),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-file", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--scans", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lookup-bench-") as tmp:
        result = run(
            rows=args.rows,
            days=args.days,
            rows_per_file=args.rows_per_file,
            lookups=args.lookups,
            scans=args.scans,
            folder=Path(tmp),
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
