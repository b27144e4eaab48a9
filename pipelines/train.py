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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.entities.model_registry import ModelVersion
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from credit_risk import registry
from credit_risk.config import (
    ConfigError,
    ProjectConfig,
    ScorecardConfig,
    ScorecardParams,
    Settings,
    load_project_config,
)
from credit_risk.data import Split, file_digest
from credit_risk.decision import DecisionEngine
from credit_risk.outcomes.training import training_data
from credit_risk.profile import build_profile
from credit_risk.schema import FeatureSchema
from credit_risk.scoring import Encoder, LinearParams, ScoringModel, impute_missing
from pipelines import evaluate, validation_report
from pipelines.cli import add_config_dir, run_job
from pipelines.scorecard_fit import fit_scorecard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    kind: str  # "xgboost", "logistic" or "scorecard"
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.kind}(" + ", ".join(f"{k}={v}" for k, v in self.params.items()) + ")"


@dataclass
class CVResult:
    candidate: Candidate
    aucs: list[float] = field(default_factory=list)
    monotone_ok: bool = True
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.aucs))

    @property
    def std(self) -> float:
        return float(np.std(self.aucs))


def list_candidates(config: ProjectConfig) -> list[Candidate]:
    candidates = config.training.candidates
    return (
        [Candidate("logistic", p.model_dump()) for p in candidates.logistic_regression]
        + [Candidate("xgboost", p.model_dump()) for p in candidates.xgboost]
        + [Candidate("scorecard", p.model_dump()) for p in candidates.scorecard]
    )


def fit_model(
    candidate: Candidate,
    matrix: np.ndarray,
    y: np.ndarray,
    *,
    schema: FeatureSchema,
    seed: int,
    scaling: ScorecardConfig | None = None,
) -> ScoringModel:
    """Fit one candidate on encoded rows; the result is a plain-data ScoringModel. ``scaling``: the points
    scaling of a scorecard candidate (``model_config.yaml``'s ``scorecard``; default: its defaults)."""
    encoder = Encoder(schema)
    if candidate.kind == "scorecard":
        scorecard = fit_scorecard(
            matrix, y, encoder=encoder, params=candidate.params, scaling=scaling or ScorecardConfig(), seed=seed
        )
        return ScoringModel(schema=schema, kind="scorecard", scorecard=scorecard)
    if candidate.kind == "xgboost":
        classifier = xgb.XGBClassifier(
            **candidate.params,
            objective="binary:logistic",
            tree_method="hist",
            n_jobs=2,
            random_state=seed,
            monotone_constraints=encoder.monotone_constraints(),
        )
        classifier.fit(matrix, y)
        return ScoringModel(schema=schema, kind="xgboost", booster=classifier.get_booster())
    impute = learn_imputation(matrix)
    if impute is not None:
        matrix = impute_missing(matrix, impute)
    mean = matrix.mean(axis=0).astype(np.float64)
    scale = matrix.std(axis=0).astype(np.float64)
    scale[scale == 0] = 1.0
    classifier = LogisticRegression(C=candidate.params["C"], max_iter=2000, random_state=seed)
    classifier.fit((matrix - mean) / scale, y)
    coef = classifier.coef_[0] / scale  # back to the raw encoding, so scoring needs no scaler
    intercept = float(classifier.intercept_[0] - np.sum(coef * mean))
    linear = LinearParams(coef=coef, intercept=intercept, baseline=mean, impute=impute)
    return ScoringModel(schema=schema, kind="logistic", linear=linear)


def learn_imputation(matrix: np.ndarray) -> np.ndarray | None:
    """Per encoded column, the training median of its present values: what a missing number becomes
    for a linear model (XGBoost learns its own direction). None when nothing is missing."""
    missing = np.isnan(matrix)
    if not missing.any():
        return None
    present = np.where(missing, 0.0, matrix).astype(np.float64)
    impute = np.zeros(matrix.shape[1])
    for column in np.flatnonzero(missing.any(axis=0)):
        values = present[~missing[:, column], column]
        impute[column] = float(np.median(values)) if len(values) else 0.0
    return impute


def respects_monotone(model: ScoringModel) -> bool:
    """XGBoost enforces the constraints; a linear model must have coefficients of the right sign, and a
    scorecard's points must not rise with the value of a field whose higher values raise the risk (nor fall
    with one whose higher values lower it)."""
    if model.scorecard is not None:
        for spec, characteristic in zip(model.encoder.fields, model.scorecard.characteristics, strict=True):
            steps = np.diff([a.points for a in characteristic.present])
            if spec.is_numeric and spec.monotone_sign and np.any(steps * spec.monotone_sign > 0):
                return False
        return True
    if model.linear is None:
        return True
    signs = np.asarray(model.encoder.monotone_constraints())
    return bool(np.all(model.linear.coef[signs != 0] * signs[signs != 0] >= 0))


def cross_validate(
    candidate: Candidate, matrix: np.ndarray, y: np.ndarray, *, config: ProjectConfig, position: str, started: float
) -> CVResult:
    """Repeated stratified k-fold ROC-AUC of one candidate, logged fold by fold."""
    cv = config.training.cv
    splitter = RepeatedStratifiedKFold(n_splits=cv.folds, n_repeats=cv.repeats, random_state=config.training.seed)
    result = CVResult(candidate)
    t0 = time.perf_counter()
    total = cv.folds * cv.repeats
    for fold, (fit_idx, test_idx) in enumerate(splitter.split(matrix, y), start=1):
        model = fit_model(
            candidate,
            matrix[fit_idx],
            y[fit_idx],
            schema=config.features,
            seed=config.training.seed,
            scaling=config.model.scorecard,
        )
        result.monotone_ok &= respects_monotone(model)
        result.aucs.append(float(roc_auc_score(y[test_idx], model.predict_proba(matrix[test_idx]))))
        if fold % cv.folds == 0 or fold == total:
            log.info(
                "%s %s: fold %d/%d, AUC so far %.4f (%.0fs elapsed)",
                position,
                candidate.name,
                fold,
                total,
                np.mean(result.aucs),
                time.perf_counter() - started,
            )
    result.seconds = time.perf_counter() - t0
    return result


def search_candidates(split: Split, config: ProjectConfig, started: float) -> list[CVResult]:
    """Cross-validate every candidate, each in a nested MLflow run."""
    matrix = Encoder(config.features).encode_frame(split.train_x)
    y = split.train_y.to_numpy()
    candidates = list_candidates(config)
    return [
        cross_validate_logged(candidate, matrix, y, config=config, position=f"[{i}/{len(candidates)}]", started=started)
        for i, candidate in enumerate(candidates, start=1)
    ]


def cross_validate_logged(
    candidate: Candidate,
    matrix: np.ndarray,
    y: np.ndarray,
    *,
    config: ProjectConfig,
    position: str,
    started: float,
    run_name: str | None = None,
) -> CVResult:
    """:func:`cross_validate` in a nested MLflow run of its own, its figures logged there."""
    with mlflow.start_run(run_name=run_name or candidate.name, nested=True):
        mlflow.log_params({"kind": candidate.kind, **candidate.params})
        result = cross_validate(candidate, matrix, y, config=config, position=position, started=started)
        mlflow.log_metrics(
            {
                "roc_auc_cv_mean": result.mean,
                "roc_auc_cv_std": result.std,
                "cv_seconds": result.seconds,
                "monotone_ok": float(result.monotone_ok),
            }
        )
    return result


def scorecard_benchmark(
    results: list[CVResult], split: Split, config: ProjectConfig, started: float
) -> CVResult | None:
    """The scorecard every version is compared with (SR 11-7 benchmarking): the best scorecard candidate, or,
    when the configuration has none, a scorecard with the default parameters cross-validated the same way
    (folds and seed) as a benchmark only, never selected; None when ``training.scorecard_benchmark`` is off
    and the grid has no scorecard."""
    scorecards = [r for r in results if r.candidate.kind == "scorecard"]
    if scorecards:
        return max(scorecards, key=lambda r: (r.monotone_ok, r.mean))
    if not config.training.scorecard_benchmark:
        return None
    candidate = Candidate("scorecard", ScorecardParams().model_dump())
    matrix = Encoder(config.features).encode_frame(split.train_x)
    return cross_validate_logged(
        candidate,
        matrix,
        split.train_y.to_numpy(),
        config=config,
        position="[benchmark]",
        started=started,
        run_name=f"benchmark {candidate.name}",
    )


def select_best(results: list[CVResult]) -> CVResult:
    eligible = [r for r in results if r.monotone_ok]
    if not eligible:
        raise RuntimeError("no candidate respects the schema's monotone constraints")
    return max(eligible, key=lambda r: r.mean)


def evaluate_holdout(model: ScoringModel, split: Split, config: ProjectConfig) -> tuple[dict[str, float], dict]:
    """Holdout metrics and disparate impact across protected groups."""
    p = model.predict_frame(split.holdout_x)
    return evaluate.evaluate_predictions(p, split.holdout_x, split.holdout_y.to_numpy(), config)


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
