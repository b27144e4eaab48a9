"""Alerts from config, plots, the markdown report and the MLflow run of a performance summary."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import mlflow

from credit_risk import registry
from credit_risk.config import PerformanceConfig, ProjectConfig
from credit_risk.performance import PerformanceAlert, PerformanceSummary, VersionPerformance
from pipelines.evaluate import save_figure


def version_alerts(version: str, figures: VersionPerformance, config: PerformanceConfig) -> list[PerformanceAlert]:
    """Realized AUC under the floor or too far under the holdout's; a band's bad rate outside its range."""
    if figures.with_outcome < config.min_outcomes:
        return []
    alerts = []
    if figures.auc is not None and figures.auc < config.min_auc:
        alerts.append(
            PerformanceAlert(
                version=version,
                subject="auc",
                message=f"v{version}: realized ROC-AUC {figures.auc:.3f} is below the floor {config.min_auc:.3f} "
                f"({figures.with_outcome} outcomes)",
                value=figures.auc,
                threshold=config.min_auc,
            )
        )
    holdout_auc = figures.holdout.get("roc_auc")
    if figures.auc is not None and holdout_auc is not None and holdout_auc - figures.auc > config.max_auc_drop:
        alerts.append(
            PerformanceAlert(
                version=version,
                subject="auc_drop",
                message=f"v{version}: realized ROC-AUC {figures.auc:.3f} is {holdout_auc - figures.auc:.3f} below "
                f"its holdout AUC {holdout_auc:.3f} (allowed {config.max_auc_drop:.3f})",
                value=holdout_auc - figures.auc,
                threshold=config.max_auc_drop,
            )
        )
    for band in figures.bands:
        if band.with_outcome < config.min_band_outcomes or band.outside_by is None:
            continue
        if band.outside_by > config.band_margin:
            alerts.append(
                PerformanceAlert(
                    version=version,
                    subject=f"band {band.band}",
                    message=f"v{version}: band {band.band} observed bad rate {band.observed:.3f} is outside its "
                    f"predicted range [{band.min_probability:.3f}, {band.max_probability:.3f}] by "
                    f"{band.outside_by:.3f} (margin {config.band_margin:.3f}, {band.with_outcome} outcomes)",
                    value=band.outside_by,
                    threshold=config.band_margin,
                )
            )
    return alerts


# ------------------------------------------------------------------ plots


def plot_roc(summary: PerformanceSummary, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for version, figures in summary.versions.items():
        if figures.roc is not None:
            ax.plot(figures.roc.fpr, figures.roc.tpr, label=f"v{version} realized (AUC {figures.auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="Realized ROC (decisions with an outcome)")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_reliability(summary: PerformanceSummary, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.05
    for version, figures in summary.versions.items():
        if figures.deciles:
            xs = [b.predicted for b in figures.deciles]
            ys = [b.observed for b in figures.deciles]
            ax.plot(xs, ys, marker="o", label=f"v{version}")
            top = max(top, *xs, *ys)
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.set(xlabel="Mean predicted P(default)", ylabel="Observed bad rate", title="Reliability diagram (deciles)")
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def plot_bad_rate_by_band(summary: PerformanceSummary, path: Path) -> Path:
    versions = list(summary.versions.items()) or [("-", None)]
    fig, axes = plt.subplots(1, len(versions), figsize=(5 * len(versions), 4), squeeze=False)
    for ax, (version, figures) in zip(axes[0], versions, strict=True):
        if figures is not None and figures.vintages:
            months = [v.month for v in figures.vintages]
            for band in figures.bands:
                rates = [v.bad_rate_by_band.get(band.band) for v in figures.vintages]
                ax.plot(months, [float("nan") if r is None else r for r in rates], marker="o", label=band.band)
            ax.tick_params(axis="x", rotation=45)
            ax.legend(title="band", fontsize=7)
        ax.set(xlabel="Decision month (vintage)", ylabel="Observed bad rate", title=f"v{version}: bad rate by band")
    return save_figure(fig, path)


def markdown_report(summary: PerformanceSummary) -> str:
    def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
        return "n/a" if value is None else pattern.format(value)

    lines = [
        f"# Realized performance of {summary.model_name}",
        "",
        f"Decisions from {summary.window.start or 'the first logged'} to {summary.window.end} (UTC), matured "
        f"{summary.maturity_days} days as of {summary.as_of}. Status: **{summary.status}**.",
        "",
        f"> {summary.selection_note}",
        "",
    ]
    for alert in summary.alerts:
        lines.append(f"- ALERT {alert.message}")
    for version, f in summary.versions.items():
        h = f.holdout
        lines += [
            "",
            f"## Version {version}",
            "",
            "| figure | realized | holdout at training |",
            "|---|---|---|",
            f"| decisions / with outcome | {f.decisions} / {f.with_outcome} "
            f"({fmt(f.share_with_outcome, '{:.1%}')}) | |",
            f"| ROC-AUC | {fmt(f.auc)} | {fmt(h.get('roc_auc'))} |",
            f"| Gini | {fmt(f.gini)} | {fmt(h.get('gini'))} |",
            f"| KS | {fmt(f.ks)} | {fmt(h.get('ks'))} |",
            f"| Brier | {fmt(f.brier)} | {fmt(h.get('brier'))} |",
            f"| approval rate | {fmt(f.approval_rate, '{:.1%}')} | {fmt(h.get('approval_rate'), '{:.1%}')} |",
            f"| calibration-in-the-large (observed - predicted) | {fmt(f.calibration_in_the_large)} | |",
            f"| calibration slope | {fmt(f.calibration_slope)} | |",
            "",
            "| decision | decisions | with outcome | share | bad rate |",
            "|---|---|---|---|---|",
        ]
        for kind, c in f.coverage_by_decision.items():
            lines.append(
                f"| {kind} | {c.decisions} | {c.with_outcome} | {fmt(c.share_with_outcome, '{:.1%}')} | "
                f"{fmt(c.bad_rate)} |"
            )
        lines += ["", "| band | range | with outcome | predicted | observed |", "|---|---|---|---|---|"]
        for b in f.bands:
            lines.append(
                f"| {b.band} | [{b.min_probability:.3f}, {b.max_probability:.3f}) | {b.with_outcome} | "
                f"{fmt(b.predicted)} | {fmt(b.observed)} |"
            )
    return "\n".join(lines) + "\n"


def _metrics(summary: PerformanceSummary) -> dict[str, float]:
    out: dict[str, float] = {"alerts": float(len(summary.alerts))}
    for version, f in summary.versions.items():
        values: dict[str, Any] = {
            "decisions": f.decisions,
            "with_outcome": f.with_outcome,
            "share_with_outcome": f.share_with_outcome,
            "approval_rate": f.approval_rate,
            "bad_rate": f.bad_rate,
            "auc": f.auc,
            "gini": f.gini,
            "ks": f.ks,
            "brier": f.brier,
            "calibration_in_the_large": f.calibration_in_the_large,
            "calibration_slope": f.calibration_slope,
            "holdout_auc": f.holdout.get("roc_auc"),
        }
        out.update({f"v{version}_{k}": float(v) for k, v in values.items() if v is not None})
    return out


def log_run(client: Any, summary: PerformanceSummary, config: ProjectConfig, params: dict[str, Any]) -> str:
    """Figures as metrics; the summary, the report and the plots as artifacts, in one MLflow run."""
    experiment_id = registry.ensure_experiment(client, config.model.performance.experiment)
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"performance {summary.window.start or '...'}..{summary.window.end}",
            tags={"model_name": summary.model_name, "status": summary.status},
        ) as run,
    ):
        registry.log_job_params(params)
        mlflow.log_metrics(_metrics(summary))
        report = Path(tmp)
        (report / "performance_report.md").write_text(markdown_report(summary))
        (report / "summary.json").write_text(summary.model_dump_json(indent=2))
        plot_roc(summary, report / "roc_curve.png")
        plot_reliability(summary, report / "reliability_diagram.png")
        plot_bad_rate_by_band(summary, report / "bad_rate_by_band.png")
        mlflow.log_artifacts(str(report), artifact_path="performance_report")
        return run.info.run_id
