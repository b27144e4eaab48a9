"""The monitor's record: the drift report (markdown and plots) and its MLflow run."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import mlflow
import numpy as np

from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.decision import DECISIONS
from pipelines import evaluate
from pipelines.monitor.drift import LEVELS


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
        if entry.get("missing_rate") is not None:
            out[f"missing_rate_{name}"] = entry["missing_rate"]
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
