"""The monitor's figures: the served version's reference, drift against it, health, fairness and alerts."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credit_risk import registry
from credit_risk.config import MonitoringConfig, ProjectConfig
from credit_risk.decision import DECISIONS
from credit_risk.metrics import disparate_impact, protected_groups
from credit_risk.profile import numeric_shares, psi, with_missing_bin
from credit_risk.schema import FeatureSchema
from credit_risk.scoring import PROFILE_FILE, SCHEMA_FILE

SUMMARY_VERSION = 1
LEVELS = ("none", "moderate", "major")

EXIT_ALERT = 2


@dataclass(frozen=True)
class Reference:
    """The served version's contract: its feature schema and training profile."""

    model_name: str
    version: str
    schema: FeatureSchema
    profile: dict[str, Any]


# ------------------------------------------------------------------ inputs


def default_window(monitoring: MonitoringConfig, today: date | None = None) -> tuple[date, date]:
    end = today or datetime.now(UTC).date()
    return end - timedelta(days=monitoring.window_days - 1), end


def load_reference(
    client: Any, config: ProjectConfig, version: str | None, *, signing_key: str | None = None
) -> Reference:
    """The served (or given) version's feature schema and reference profile, from its verified artifacts."""
    reg = config.model.registry
    found = registry.resolve(client, reg, version or None)
    with tempfile.TemporaryDirectory() as tmp:
        local = registry.fetch_verified(client, found, Path(tmp), signing_key=signing_key)
        folder = registry.scoring_dir(local)
        if not (folder / PROFILE_FILE).is_file():
            raise registry.RegistryError(f"version {found.version} has no reference profile ({PROFILE_FILE})")
        profile = json.loads((folder / PROFILE_FILE).read_text())
        schema = FeatureSchema.read(folder / SCHEMA_FILE)
    return Reference(reg.model_name, str(found.version), schema, profile)


# ------------------------------------------------------------------ figures


def _shares(reference: dict[str, Any], column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Shares of the non-null values over the reference bins, and how many values there were."""
    column = column.drop_null()
    if len(column) and not pa.types.is_string(column.type) and reference.get("type") != "categorical":
        column = column.cast(pa.float64())
    if reference.get("type") == "categorical":
        counts = {c["values"]: c["counts"] for c in pc.value_counts(column).to_pylist()}
        known = np.asarray([counts.get(code, 0) for code in reference["categories"]], dtype=np.float64)
        return known / max(known.sum(), 1.0), len(column)
    # the very binning rule the training profile was built with
    return numeric_shares(column.to_numpy(), reference["edges"]), len(column)


def psi_level(value: float, monitoring: MonitoringConfig) -> str:
    if value > monitoring.psi_major:
        return "major"
    return "moderate" if value > monitoring.psi_moderate else "none"


def feature_drift(table: pa.Table, ref: Reference, config: ProjectConfig) -> dict[str, dict[str, Any]]:
    """PSI per field against its training bins; hashed, dropped and absent fields are named, not scored."""
    privacy, monitoring = config.model.prediction_log, config.model.monitoring
    out: dict[str, dict[str, Any]] = {}
    for spec in ref.schema.fields:
        entry: dict[str, Any] = {"protected": spec.protected}
        reference = ref.profile.get("features", {}).get(spec.name)
        if spec.name in privacy.drop_fields:
            out[spec.name] = {**entry, "status": "dropped"}
            continue
        if spec.name in privacy.hash_fields or reference is None:
            out[spec.name] = {**entry, "status": "hashed" if reference else "no reference"}
            continue
        column = table.column(spec.name)
        actual, present = _shares(reference, column)
        missing_rate = column.null_count / len(column) if len(column) else None
        if present == 0 and (spec.protected or spec.required):
            out[spec.name] = {**entry, "status": "absent", "missing_rate": missing_rate}
            continue
        expected = np.asarray(reference["shares"])
        if not spec.protected and not spec.required:
            # an optional input's missing values are a bin of their own (protected fields are optional
            # to send at all, so their nulls say nothing about the population)
            expected = with_missing_bin(expected, float(reference.get("missing_share", 0.0)))
            actual = with_missing_bin(actual, float(missing_rate or 0.0))
        value = psi(expected, actual)
        out[spec.name] = {
            **entry,
            "status": "scored",
            "rows": present,
            "missing_rate": missing_rate,
            "psi": value,
            "level": psi_level(value, monitoring),
            "expected": expected.tolist(),
            "actual": actual.tolist(),
        }
    return out


def _percentiles(values: np.ndarray, qs: Sequence[float]) -> dict[str, float | None]:
    if values.size == 0:
        return {f"p{int(q * 100)}": None for q in qs}
    return {f"p{int(q * 100)}": float(v) for q, v in zip(qs, np.quantile(values, qs), strict=True)}


def health(table: pa.Table) -> dict[str, Any]:
    """Volume, latency percentiles, decision mix, probability and score distribution."""
    n = table.num_rows
    latency = table.column("latency_ms").drop_null().to_numpy()
    counts = {c["values"]: c["counts"] for c in pc.value_counts(table.column("decision")).to_pylist()}
    probability = table.column("probability").to_numpy()
    score = table.column("score").drop_null().to_numpy()
    return {
        "volume": n,
        "latency_ms": {**_percentiles(latency, (0.5, 0.95, 0.99)), "mean": float(latency.mean()) if n else None},
        "decision_counts": {d: int(counts.get(d, 0)) for d in DECISIONS},
        "decision_rates": {d: (counts.get(d, 0) / n if n else None) for d in DECISIONS},
        "probability": {**_percentiles(probability, (0.1, 0.5, 0.9)), "mean": float(probability.mean()) if n else None},
        "score": {**_percentiles(score, (0.1, 0.5, 0.9)), "mean": float(score.mean()) if score.size else None},
    }


def fairness(table: pa.Table, ref: Reference, config: ProjectConfig) -> dict[str, Any]:
    """Approval-rate ratio across the groups of each protected attribute sent with requests."""
    evaluation, privacy = config.training.evaluation, config.model.prediction_log
    favourable = ("approve",) if evaluation.favourable_outcome == "approved" else ("approve", "review")
    report: dict[str, Any] = {}
    for spec in ref.schema.protected_fields:
        if spec.name in privacy.drop_fields or (spec.name in privacy.hash_fields and spec.is_numeric):
            continue  # hashed ages cannot be cut into age groups; hashed categories still group
        column = table.column(spec.name)
        present = pc.is_valid(column)
        if not pc.any(present).as_py():
            continue
        rows = table.filter(present)
        frame = pd.DataFrame({spec.name: rows.column(spec.name).to_pandas()})
        groups = protected_groups(frame, ref.schema)
        approved = pc.is_in(rows.column("decision"), pa.array(favourable)).to_numpy(zero_copy_only=False)
        report.update(disparate_impact(groups, approved, min_group_size=evaluation.min_group_size))
    return report


def time_series(table: pa.Table, *, hourly: bool) -> dict[str, Any]:
    """Per hour (or day): volume, latency percentiles and decision mix, for the UI's charts."""
    unit = "hour" if hourly else "day"
    if table.num_rows == 0:
        return {"bucket": unit, "points": []}
    frame = pd.DataFrame(
        {
            "start": pc.floor_temporal(table.column("scored_at"), unit=unit).to_pandas(),
            "latency": table.column("latency_ms").to_pandas(),
            "decision": table.column("decision").to_pandas(),
        }
    )
    grouped = frame.groupby("start", sort=True)
    latency = grouped["latency"].quantile([0.5, 0.95, 0.99]).unstack()
    mix = pd.crosstab(frame["start"], frame["decision"]).reindex(columns=list(DECISIONS), fill_value=0)
    volume = grouped.size()
    points = []
    for start in volume.index:
        n = int(volume[start])
        points.append(
            {
                "start": start.isoformat(),
                "volume": n,
                "latency_p50": _maybe(latency.at[start, 0.5]),
                "latency_p95": _maybe(latency.at[start, 0.95]),
                "latency_p99": _maybe(latency.at[start, 0.99]),
                **{d: int(mix.at[start, d]) for d in DECISIONS},
            }
        )
    return {"bucket": unit, "points": points}


def _maybe(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def alerts(summary: dict[str, Any], monitoring: MonitoringConfig) -> list[dict[str, Any]]:
    """Every figure past its threshold, with its level."""
    found = []
    drifts = {"probability": summary["psi"]["probability"], **summary["psi"]["features"]}
    for name, entry in drifts.items():
        if entry.get("status") == "scored" and entry["level"] != "none":
            limit = monitoring.psi_major if entry["level"] == "major" else monitoring.psi_moderate
            found.append(
                {
                    "level": entry["level"],
                    "kind": "psi",
                    "subject": name,
                    "value": entry["psi"],
                    "threshold": limit,
                    "message": f"PSI of {name} is {entry['psi']:.3f} (> {limit:.2f}: {entry['level']} shift)",
                }
            )
    for attribute, entry in summary["fairness"].items():
        if entry["disparate_impact"] < monitoring.min_disparate_impact:
            found.append(
                {
                    "level": monitoring.fairness_alert_level,
                    "kind": "disparate_impact",
                    "subject": attribute,
                    "value": entry["disparate_impact"],
                    "threshold": monitoring.min_disparate_impact,
                    "message": f"approval-rate ratio across {attribute} groups is {entry['disparate_impact']:.3f} "
                    f"(< {monitoring.min_disparate_impact:.2f})",
                }
            )
    return found


def crosses(level: str, monitoring: MonitoringConfig) -> bool:
    """True when ``level`` reaches the configured ``alert_on`` level."""
    return monitoring.alert_on != "none" and LEVELS.index(level) >= LEVELS.index(monitoring.alert_on)


# ------------------------------------------------------------------ the summary


def summarise(table: pa.Table, ref: Reference, config: ProjectConfig, *, start: date, end: date) -> dict[str, Any]:
    """Every figure of the window, the alerts and the overall status, as plain JSON data."""
    monitoring = config.model.monitoring
    served = table.filter(pc.equal(table.column("model_version"), ref.version))
    versions = {c["values"]: c["counts"] for c in pc.value_counts(table.column("model_version")).to_pylist()}
    probability_ref = ref.profile["probability"]
    actual, _ = _shares(probability_ref, served.column("probability"))
    probability_psi = psi(np.asarray(probability_ref["shares"]), actual) if served.num_rows else None
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "model": {"name": ref.model_name, "version": ref.version},
        "other_versions": {str(v): int(n) for v, n in versions.items() if str(v) != ref.version},
        **health(served),
        "psi": {
            "probability": {
                "status": "scored" if served.num_rows else "absent",
                "psi": probability_psi,
                "level": psi_level(probability_psi, monitoring) if probability_psi is not None else "none",
                "edges": list(probability_ref["edges"]),
                "expected": list(probability_ref["shares"]),
                "actual": actual.tolist(),
            },
            "features": feature_drift(served, ref, config) if served.num_rows else {},
        },
        "fairness": fairness(served, ref, config) if served.num_rows else {},
        "thresholds": {
            "psi_moderate": monitoring.psi_moderate,
            "psi_major": monitoring.psi_major,
            "min_disparate_impact": monitoring.min_disparate_impact,
            "alert_on": monitoring.alert_on,
            "min_rows": monitoring.min_rows,
        },
        "time_series": time_series(served, hourly=(end - start).days < 2),
    }
    found = alerts(summary, monitoring)
    if served.num_rows == 0:
        status, found = "no_data", []
    elif served.num_rows < monitoring.min_rows:
        status, found = "insufficient_data", []  # too few rows for PSI to mean anything: report, do not alert
    else:
        status = "alert" if found else "ok"
    summary["alerts"] = found
    summary["alert_level"] = max((a["level"] for a in found), key=LEVELS.index, default="none")
    summary["status"] = status
    summary["exit_code"] = EXIT_ALERT if crosses(summary["alert_level"], monitoring) else 0
    return summary
