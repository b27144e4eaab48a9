"""The candidates training compares: listed from training.yaml, fitted, cross-validated, chosen.

:func:`search_candidates` runs every candidate through the same repeated stratified
cross-validation (each logged as a nested MLflow run); :func:`select_best` picks the best
that respects the schema's monotone constraints; :func:`scorecard_benchmark` gives the
points scorecard's figure every validation report sets beside the chosen model's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from credit_risk.config import (
    ProjectConfig,
    ScorecardConfig,
    ScorecardParams,
)
from credit_risk.data import Split
from credit_risk.schema import FeatureSchema
from credit_risk.scoring import Encoder, LinearParams, ScoringModel, impute_missing
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
