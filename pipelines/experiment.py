"""Experiments from the command line: start, stop, and report the live comparison.

``mlflow run . -e experiment -P action=start -P version=N -P mode=shadow|split -P share=0.1 -P reason=...``
``mlflow run . -e experiment -P action=stop [-P id=exp-...] -P reason=...``
``mlflow run . -e experiment -P action=report [-P id=exp-...]`` (default: the running or latest one)

Start and stop are recorded in the registry's ledger, which every worker of every instance follows
within its poll interval; the challenger is downloaded and digest-checked before the start is
recorded. The report is an MLflow run: per-arm figures as metrics, the report as JSON and plots.
The logic is :mod:`credit_risk.experiments`'.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import mlflow
from mlflow.entities.model_registry import ModelVersion

from credit_risk import registry
from credit_risk.audit.replay import fetch_verified_model
from credit_risk.config import ProjectConfig, Settings, load_project_config
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.experiments import control
from credit_risk.experiments.compare import experiment_report
from credit_risk.experiments.model import Experiment, list_experiments
from credit_risk.experiments.report import ExperimentReport
from credit_risk.outcomes.paths import resolve_outcomes_dir
from pipelines.cli import add_config_dir, run_job

log = logging.getLogger(__name__)


def start(
    config: ProjectConfig, settings: Settings, *, version: str, mode: str, share: float, reason: str
) -> Experiment:
    client = registry.connect(settings, config.root)
    key = registry.signing_key(settings)
    name = config.model.registry.model_name

    def verify(target: ModelVersion) -> None:  # as the service loads a version: downloaded, digest-checked
        challenger = fetch_verified_model(client, name, str(target.version), signing_key=key)
        champion = registry.resolve(client, config.model.registry)
        control.check_same_inputs(
            fetch_verified_model(client, name, str(champion.version), signing_key=key), challenger, str(target.version)
        )

    return control.start_experiment(
        client,
        config,
        challenger_version=version,
        mode=mode,
        share=share,
        reason=reason,
        actor=getpass.getuser(),
        verify=verify,
    )


def stop(config: ProjectConfig, settings: Settings, *, experiment_id: str | None, reason: str) -> Experiment:
    client = registry.connect(settings, config.root)
    return control.stop_experiment(client, config, experiment_id=experiment_id, reason=reason, actor=getpass.getuser())


def _chosen(config: ProjectConfig, settings: Settings, experiment_id: str | None) -> Experiment:
    found = list_experiments(registry.connect(settings, config.root), config.model.registry.model_name)
    if experiment_id:
        found = [e for e in found if e.id == experiment_id]
    if not found:
        raise control.ExperimentNotFound(f"no experiment {experiment_id}" if experiment_id else "no experiment yet")
    running = [e for e in found if e.active]
    return (running or found)[0]


def _metrics(report: ExperimentReport) -> dict[str, float]:
    out: dict[str, float] = {"applicants": float(report.applicants)}
    for arm in report.arms:
        out[f"{arm.arm}_applicants"] = float(arm.applicants)
        for code, rate in arm.rates.items():
            if rate.value is not None:
                out[f"{arm.arm}_{code}_rate"] = rate.value
    if report.score_psi is not None:
        out["score_psi"] = report.score_psi
    if report.sample_ratio is not None:
        out["sample_ratio_p_value"] = report.sample_ratio.p_value
    if report.outcomes is not None:
        for arm in report.outcomes.arms:
            out[f"{arm.arm}_outcomes"] = float(arm.outcomes)
            if arm.auc.value is not None:
                out[f"{arm.arm}_realized_auc"] = arm.auc.value
            if arm.bad_rate.value is not None:
                out[f"{arm.arm}_bad_rate"] = arm.bad_rate.value
        if report.outcomes.confidence is not None:
            out["challenger_ahead_confidence"] = report.outcomes.confidence
    return out


def plot_scores(report: ExperimentReport, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    labels = ["below"] + [f"{edge:.0f}+" for edge in report.score_edges]
    width = 0.4
    for offset, arm in zip((-width / 2, width / 2), report.arms, strict=False):
        total = max(sum(arm.score_histogram), 1)
        axis.bar(
            [i + offset for i in range(len(arm.score_histogram))],
            [v / total for v in arm.score_histogram],
            width=width,
            label=f"{arm.arm} (version {arm.version})",
        )
    axis.set_xticks(range(len(labels)), labels, rotation=45)
    axis.set_ylabel("share of the arm's applicants")
    axis.set_title("Score distribution by arm")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_rates(report: ExperimentReport, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    words = {"approve": "Approved", "review": "Referred", "decline": "Declined"}
    width = 0.4
    for offset, arm in zip((-width / 2, width / 2), report.arms, strict=False):
        values = [arm.rates[code].value or 0.0 for code in words]
        errors = [
            [max((arm.rates[c].value or 0) - (arm.rates[c].low or 0), 0) for c in words],
            [max((arm.rates[c].high or 0) - (arm.rates[c].value or 0), 0) for c in words],
        ]
        axis.bar([i + offset for i in range(3)], values, width=width, yerr=errors, capsize=3, label=arm.arm)
    axis.set_xticks(range(3), list(words.values()))
    axis.set_ylabel("share of the arm's applicants")
    axis.set_title("Decisions by arm (95% intervals)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def report(
    config: ProjectConfig, settings: Settings, *, experiment_id: str | None, log_dir: Path | None
) -> ExperimentReport:
    experiment = _chosen(config, settings, experiment_id)
    log_dir = log_dir or resolve_log_dir(config, settings)
    result = experiment_report(config, experiment, log_dir=log_dir, outcomes_dir=resolve_outcomes_dir(config, log_dir))
    client = registry.connect(settings, config.root)
    experiment_mlflow = registry.ensure_experiment(client, config.model.experiments.experiment)
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(
            experiment_id=experiment_mlflow,
            run_name=f"experiment {experiment.id} ({experiment.mode})",
            tags={
                "experiment_id": experiment.id,
                "mode": experiment.mode,
                "champion_version": experiment.champion_version,
                "challenger_version": experiment.challenger_version,
            },
        ),
    ):
        registry.log_job_params({"experiment_id": experiment.id, "log_dir": str(log_dir)})
        mlflow.log_metrics(_metrics(result))
        folder = Path(tmp)
        (folder / "report.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2))
        (folder / "verdicts.md").write_text("\n".join(f"- {line}" for line in result.verdicts) + "\n")
        plot_scores(result, folder / "score_distribution.png")
        plot_rates(result, folder / "decision_rates.png")
        mlflow.log_artifacts(str(folder), artifact_path="experiment_report")
    for line in result.verdicts:
        print(line)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--action", choices=("start", "stop", "report"), required=True)
    parser.add_argument("--id", default="", help="the experiment (stop, report); default the running or latest one")
    parser.add_argument("--version", default="", help="start: the challenger's version")
    parser.add_argument("--mode", default="shadow", choices=("shadow", "split"))
    parser.add_argument(
        "--share", type=float, default=0.1, help="start: the share shadowed or decided by the challenger"
    )
    parser.add_argument("--reason", default="", help="start and stop: why (recorded in the ledger)")
    parser.add_argument("--log-dir", default="", help="report: the prediction log folder (default: as the service)")
    args = parser.parse_args(argv)
    settings = Settings()

    def job() -> Any:
        config = load_project_config(args.config_dir or settings.config_dir)
        if args.action == "start":
            if not args.version:
                raise control.ExperimentRefused("start needs the challenger's version (-P version=N)")
            done = start(config, settings, version=args.version, mode=args.mode, share=args.share, reason=args.reason)
            print(json.dumps(done.to_json(), indent=2))
            return done
        if args.action == "stop":
            done = stop(config, settings, experiment_id=args.id or None, reason=args.reason)
            print(json.dumps(done.to_json(), indent=2))
            return done
        return report(
            config, settings, experiment_id=args.id or None, log_dir=Path(args.log_dir) if args.log_dir else None
        )

    return run_job(job)


if __name__ == "__main__":
    raise SystemExit(main())
