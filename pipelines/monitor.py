"""Monitor: drift and health of the served model, from the prediction log.

``mlflow run . -e monitor [-P start=YYYY-MM-DD] [-P end=YYYY-MM-DD] [-P log_dir=...] [-P version=N]``
(or ``python -m pipelines.monitor``). For a window of UTC dates (default: the
last ``monitoring.window_days`` days) it compares the rows logged by the served
version with that version's training reference profile: volume, latency
percentiles, decision mix, score distribution, PSI of the probability and of
every feature (bins fixed on the training data), and approval-rate ratios
across protected groups. It logs metrics and a drift report to an MLflow run,
writes the latest summary (read by ``GET /v1/monitoring``), and exits 2 when the
configured alert level is crossed (1 on an error, 0 otherwise).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credit_risk import registry
from credit_risk.config import MonitoringConfig, ProjectConfig, Settings, load_project_config
from credit_risk.decision import DECISIONS
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import resolve_log_dir, summary_path
from credit_risk.decision_log.reader import read_log
from credit_risk.profile import numeric_shares, psi
from credit_risk.schema import FeatureSchema
from credit_risk.scoring import PROFILE_FILE, SCHEMA_FILE
from pipelines import evaluate
from pipelines.cli import add_config_dir, run_job

log = logging.getLogger(__name__)

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
        actual, present = _shares(reference, table.column(spec.name))
        if present == 0:
            out[spec.name] = {**entry, "status": "absent"}
            continue
        value = psi(np.asarray(reference["shares"]), actual)
        out[spec.name] = {
            **entry,
            "status": "scored",
            "rows": present,
            "psi": value,
            "level": psi_level(value, monitoring),
            "expected": list(reference["shares"]),
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
        if spec.name in privacy.drop_fields or (spec.name in privacy.hash_fields and spec.type == "integer"):
            continue  # hashed ages cannot be cut into age groups; hashed categories still group
        column = table.column(spec.name)
        present = pc.is_valid(column)
        if not pc.any(present).as_py():
            continue
        rows = table.filter(present)
        frame = pd.DataFrame({spec.name: rows.column(spec.name).to_pandas()})
        groups = evaluate.protected_groups(frame, ref.schema, evaluation)
        approved = pc.is_in(rows.column("decision"), pa.array(favourable)).to_numpy(zero_copy_only=False)
        report.update(evaluate.disparate_impact(groups, approved, min_group_size=evaluation.min_group_size))
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


# ------------------------------------------------------------------ the report


def plot_score_distribution(summary: dict[str, Any], path: Path) -> Path:
    entry = summary["psi"]["probability"]
    edges = entry["edges"]
    labels = [f"< {edges[0]:.2f}"] + [f"{a:.2f}-{b:.2f}" for a, b in itertools.pairwise(edges)]
    labels += [f">= {edges[-1]:.2f}"]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, entry["expected"], width=0.4, label="training")
    ax.bar(x + 0.2, entry["actual"], width=0.4, label="logged")
    psi_text = "n/a" if entry["psi"] is None else f"{entry['psi']:.3f}"
    ax.set(
        xticks=x,
        xlabel="P(default) bin (training deciles)",
        ylabel="Share of applicants",
        title=f"Score distribution vs training (PSI {psi_text})",
    )
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.legend()
    return evaluate.save_figure(fig, path)


def plot_psi(summary: dict[str, Any], path: Path) -> Path:
    scored = {"probability": summary["psi"]["probability"], **summary["psi"]["features"]}
    items = sorted(((n, e["psi"]) for n, e in scored.items() if e.get("status") == "scored"), key=lambda i: i[1])
    thresholds = summary["thresholds"]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(items) + 1.5))
    colours = [
        "tab:red" if v > thresholds["psi_major"] else "tab:orange" if v > thresholds["psi_moderate"] else "tab:green"
        for _, v in items
    ]
    ax.barh([n for n, _ in items], [v for _, v in items], color=colours)
    ax.axvline(thresholds["psi_moderate"], color="tab:orange", linestyle="--", label="moderate")
    ax.axvline(thresholds["psi_major"], color="tab:red", linestyle="--", label="major")
    ax.set(xlabel="Population stability index", title="PSI per feature vs training")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right")
    return evaluate.save_figure(fig, path)


def markdown_report(summary: dict[str, Any]) -> str:
    """A human-readable drift report: status, alerts, health, PSI table, fairness."""
    latency, rates = summary["latency_ms"], summary["decision_rates"]

    def fmt(value: Any, pattern: str = "{:.3f}") -> str:
        return "n/a" if value is None else pattern.format(value)

    lines = [
        f"# Drift report: {summary['model']['name']} v{summary['model']['version']}",
        "",
        f"Window {summary['window']['start']} to {summary['window']['end']} (UTC); "
        f"generated {summary['generated_at']}.",
        f"**Status: {summary['status']}** (alert level {summary['alert_level']}; alerting at "
        f"{summary['thresholds']['alert_on']}).",
        "",
        "## Alerts",
        *([f"- **{a['level']}**: {a['message']}" for a in summary["alerts"]] or ["- none"]),
        "",
        "## Health",
        f"- Volume: {summary['volume']} scored applicants"
        + (f" (other versions in the window: {summary['other_versions']})" if summary["other_versions"] else ""),
        f"- Latency (ms): p50 {fmt(latency['p50'], '{:.2f}')}, p95 {fmt(latency['p95'], '{:.2f}')}, "
        f"p99 {fmt(latency['p99'], '{:.2f}')}",
        "- Decisions: " + ", ".join(f"{d} {fmt(rates[d], '{:.1%}')}" for d in DECISIONS),
        f"- Mean probability of default {fmt(summary['probability']['mean'])}; "
        f"median score {fmt(summary['score']['p50'], '{:.0f}')}",
        "",
        "## Population stability index (bins fixed on the training data)",
        "",
        "| field | PSI | level |",
        "|---|---|---|",
    ]
    scored = {"probability": summary["psi"]["probability"], **summary["psi"]["features"]}
    for name, entry in scored.items():
        if entry.get("status") == "scored":
            lines.append(f"| `{name}` | {entry['psi']:.4f} | {entry['level']} |")
        else:
            lines.append(f"| `{name}` | n/a | {entry.get('status')} |")
    lines += ["", "## Approval-rate ratio across protected groups", ""]
    for attribute, entry in summary["fairness"].items():
        groups = "; ".join(f"{g}: {s['approval_rate']:.2f} (n={s['n']})" for g, s in entry["groups"].items())
        lines.append(f"- `{attribute}`: {entry['disparate_impact']:.3f} ({groups})")
    if not summary["fairness"]:
        lines.append("- no protected attributes were sent with requests in this window")
    return "\n".join(lines) + "\n"


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {
        "volume": float(summary["volume"]),
        "alert_level": float(LEVELS.index(summary["alert_level"])),
    }
    for key, value in summary["latency_ms"].items():
        if value is not None:
            out[f"latency_ms_{key}"] = value
    for decision, rate in summary["decision_rates"].items():
        if rate is not None:
            out[f"rate_{decision}"] = rate
    for name, entry in {"probability": summary["psi"]["probability"], **summary["psi"]["features"]}.items():
        if entry.get("status") == "scored":
            out[f"psi_{name}"] = entry["psi"]
    for attribute, entry in summary["fairness"].items():
        out[f"disparate_impact_{attribute}"] = entry["disparate_impact"]
    return out


def log_run(client: Any, summary: dict[str, Any], config: ProjectConfig, log_dir: Path) -> str:
    """Metrics, the summary and the drift report (markdown, plots) in one MLflow run."""
    experiment_id = registry.ensure_experiment(client, config.model.monitoring.experiment)
    window, model = summary["window"], summary["model"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"monitor v{model['version']} {window['start']}..{window['end']}",
            tags={"model_name": model["name"], "model_version": model["version"], "status": summary["status"]},
        ) as run,
    ):
        registry.log_job_params({"start": window["start"], "end": window["end"], "log_dir": str(log_dir)})
        mlflow.log_metrics(_metrics(summary))
        report = Path(tmp)
        (report / "drift_report.md").write_text(markdown_report(summary))
        (report / "summary.json").write_text(json.dumps(summary, indent=2))
        plot_score_distribution(summary, report / "score_distribution.png")
        plot_psi(summary, report / "psi_by_feature.png")
        mlflow.log_artifacts(str(report), artifact_path="drift_report")
        return run.info.run_id


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Atomically replace the latest summary: the API never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w") as handle:
        json.dump(summary, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# ------------------------------------------------------------------ the job


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
    log_dir = Path(log_dir) if log_dir else resolve_log_dir(config, settings)
    client = registry.connect(settings, config.root)
    ref = load_reference(client, config, version, signing_key=registry.signing_key(settings))
    privacy = config.model.prediction_log
    schema = log_schema(ref.schema, drop_fields=privacy.drop_fields, hash_fields=privacy.hash_fields)
    table = read_log(log_dir, schema, start=start, end=end, model_name=ref.model_name)
    log.info("read %d logged rows of %s from %s (%s to %s)", table.num_rows, ref.model_name, log_dir, start, end)
    summary = summarise(table, ref, config, start=start, end=end)
    summary["mlflow_run_id"] = log_run(client, summary, config, log_dir)
    write_summary(summary_path(config.model.monitoring, log_dir, config.root), summary)
    for alert in summary["alerts"]:
        log.warning("%s: %s", alert["level"], alert["message"])
    log.info("status %s, alert level %s, run %s", summary["status"], summary["alert_level"], summary["mlflow_run_id"])
    return summary


def _date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--start", type=_date, default=None, help="first UTC date (default: window_days ago)")
    parser.add_argument("--end", type=_date, default=None, help="last UTC date (default: today)")
    parser.add_argument("--log-dir", default="", help="prediction log folder (default: as the service)")
    parser.add_argument("--version", default="", help="monitor this version (default: the served one)")
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
                log_dir=Path(args.log_dir) if args.log_dir else None,
                version=args.version or None,
            )
        )

    code = run_job(job)
    return code or int(result.get("exit_code", 0))


if __name__ == "__main__":
    raise SystemExit(main())
