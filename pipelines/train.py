"""Train: select a candidate by repeated stratified CV, refit, evaluate, register.

``mlflow run . -e train --env-manager local`` (or ``python -m pipelines.train``).
The new version gets the challenger alias; promotion is a separate step.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from credit_risk import registry
from credit_risk.config import (
    ConfigError,
    ProjectConfig,
    Settings,
    load_project_config,
)
from credit_risk.data import Split, file_digest
from credit_risk.decision import DecisionEngine
from credit_risk.metrics import evaluate_predictions
from credit_risk.outcomes.training import training_data
from credit_risk.profile import build_profile
from credit_risk.scoring import Encoder, ScoringModel
from pipelines import evaluate, validation_report
from pipelines.candidates import (
    fit_model,
    scorecard_benchmark,
    search_candidates,
    select_best,
)
from pipelines.cli import add_config_dir, run_job

log = logging.getLogger(__name__)


def evaluate_holdout(model: ScoringModel, split: Split, config: ProjectConfig) -> tuple[dict[str, float], dict]:
    """Holdout metrics and disparate impact across protected groups."""
    p = model.predict_frame(split.holdout_x)
    return evaluate_predictions(p, split.holdout_x, split.holdout_y.to_numpy(), config)


def write_reports(model: ScoringModel, split: Split, config: ProjectConfig, directory: Path) -> None:
    """Plots people look at, from the holdout (and training data for importance)."""
    y = split.holdout_y.to_numpy()
    p = model.predict_frame(split.holdout_x)
    engine = DecisionEngine(model, config.model)
    evaluate.plot_roc(y, p, directory / "roc_curve.png")
    evaluate.plot_calibration(y, p, directory / "calibration_curve.png")
    evaluate.plot_score_distribution(y, engine.scores(p), directory / "score_distribution.png")
    contributions = model.field_contributions(model.encoder.encode_frame(split.train_x))
    importance = pd.Series(np.abs(contributions).mean(axis=0), index=config.features.input_names)
    evaluate.plot_importance(importance, directory / "feature_importance.png")


def config_digest(config_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(config_dir).glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def train(
    config: ProjectConfig, settings: Settings, *, source: str | None = None, search: str = "full"
) -> ModelVersion:
    """The whole training step; returns the registered version (alias: challenger).

    ``source``: ``file`` or ``production`` (default: ``data.source`` in training.yaml).
    ``search``: ``full`` (every configured candidate, the configured CV) or ``quick`` (the first
    model of a fresh install: ``training.quick_search``)."""
    if search not in ("full", "quick"):
        raise ConfigError(f"search: expected full or quick, got {search!r}")
    if search == "quick":
        config = config.model_copy(update={"training": config.training.quick()})
    started = time.perf_counter()
    client = registry.connect(settings, config.root)
    experiment_id = registry.ensure_experiment(client, config.model.registry.experiment)
    data_path = config.resolve(config.training.data.path)
    data = training_data(config, settings, source=source)
    split = data.split
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as run:
        data.log()
        registry.log_job_params(
            {
                "seed": config.training.seed,
                "cv_folds": config.training.cv.folds,
                "cv_repeats": config.training.cv.repeats,
                "search": search,
                "n_train": len(split.train_x),
                "n_holdout": len(split.holdout_x),
            }
        )
        results = search_candidates(split, config, started)
        best = select_best(results)
        baseline = max((r for r in results if r.candidate.kind == "logistic"), key=lambda r: r.mean, default=None)
        benchmark = scorecard_benchmark(results, split, config, started)
        log.info("selected %s: CV AUC %.4f ± %.4f", best.candidate.name, best.mean, best.std)
        if benchmark is not None:
            log.info("benchmark %s: CV AUC %.4f ± %.4f", benchmark.candidate.name, benchmark.mean, benchmark.std)
        train_matrix = Encoder(config.features).encode_frame(split.train_x)
        model = fit_model(
            best.candidate,
            train_matrix,
            split.train_y.to_numpy(),
            schema=config.features,
            seed=config.training.seed,
            scaling=config.model.scorecard,
        )
        model.profile = build_profile(config.features, split.train_x, model.predict_proba(train_matrix))
        metrics, fairness = evaluate_holdout(model, split, config)
        cv = {"roc_auc_cv_mean": best.mean, "roc_auc_cv_std": best.std}
        if baseline is not None:
            cv["baseline_roc_auc_cv_mean"] = baseline.mean
        if benchmark is not None:
            cv["scorecard_roc_auc_cv_mean"] = benchmark.mean
            cv["scorecard_roc_auc_cv_std"] = benchmark.std
        registry.log_job_params(
            {"selected_kind": best.candidate.kind, **{f"selected_{k}": v for k, v in best.candidate.params.items()}}
        )
        mlflow.log_metrics(
            {
                **cv,
                **{f"holdout_{k}": v for k, v in metrics.items()},
                **{f"disparate_impact_{a}": e["disparate_impact"] for a, e in fairness.items()},
            }
        )
        mlflow.log_dict(fairness, "fairness.json")
        for path in sorted(config.config_dir.glob("*.yaml")):
            mlflow.log_artifact(str(path), artifact_path="config")
        with tempfile.TemporaryDirectory() as tmp:
            reports = Path(tmp) / "reports"
            reports.mkdir()
            write_reports(model, split, config, reports)
            if model.scorecard is not None:  # the points table for people, and the same table as SQL
                (reports / "scorecard_points.csv").write_text(model.scorecard.points_csv())
                (reports / "scorecard.sql").write_text(model.scorecard.to_sql())
            (reports / "model_card.md").write_text(
                evaluate.model_card(
                    name=config.model.registry.model_name,
                    kind=best.candidate.kind,
                    params=best.candidate.params,
                    schema=config.features,
                    data_path=str(config.training.data.path),
                    n_train=len(split.train_x),
                    n_holdout=len(split.holdout_x),
                    cv=cv,
                    holdout=metrics,
                    fairness=fairness,
                    threshold=config.model.decision.approve_below,
                )
            )
            mlflow.log_artifacts(str(reports), artifact_path="reports")
            scoring_dir = Path(tmp) / "scoring_model"
            model.save(scoring_dir)
            example = split.train_x[config.features.input_names].head(5)
            tags = {
                "model_kind": best.candidate.kind,
                "data_sha256": file_digest(data_path),
                "config_sha256": config_digest(config.config_dir),
                "git_commit": git_commit(config.root),
                "feature_schema_version": str(config.features.version),
                "decision_policy_version": config.model.decision.policy_version,
                **data.tags,
                **{f"metric.{k}": f"{v:.6f}" for k, v in {**cv, **metrics}.items()},
            }
            version = registry.log_and_register(
                client,
                scoring_dir=scoring_dir,
                registry=config.model.registry,
                input_example=example,
                output_example=model.predict_frame(example),
                tags=tags,
                signing_key=registry.signing_key(settings),
            )
            validation_report.attach(
                client,
                version,
                model=model,
                split=split,
                config=config,
                candidates=results,
                selected=best,
                benchmark=benchmark,
                fairness=fairness,
                signing_key=registry.signing_key(settings),
            )
        log.info(
            "registered %s version %s (run %s) with alias %r in %.0fs",
            version.name,
            version.version,
            run.info.run_id,
            config.model.registry.challenger_alias,
            time.perf_counter() - started,
        )
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_dir(parser)
    parser.add_argument("--source", default="", help="file | production (default: data.source in training.yaml)")
    parser.add_argument(
        "--search",
        default="full",
        choices=("full", "quick"),
        help="full: every configured candidate (default); quick: the first model of a fresh install",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    config_dir = args.config_dir or settings.config_dir
    return run_job(
        lambda: train(load_project_config(config_dir), settings, source=args.source or None, search=args.search)
    )


if __name__ == "__main__":
    raise SystemExit(main())
