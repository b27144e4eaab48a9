"""``training.yaml``: the data, cross-validation, evaluation, the candidates and the quick search."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen


class ProductionDataConfig(_Frozen):
    """Training from production: logged applicants joined with their matured outcomes."""

    include_file: bool = Field(default=False, description="Add the data file's rows to the training part.")
    min_outcomes: int = Field(default=300, ge=10, description="Training refuses on fewer matured outcomes ...")
    min_events: int = Field(default=30, ge=2, description="... or on fewer defaults among them.")
    lookback_days: int | None = Field(default=None, ge=1, description="Only decisions this recent (null: all logged).")


class DataConfig(_Frozen):
    """The training data and how the holdout is split off."""

    path: Path = Field(
        default=Path("data/german_credit.csv"), description="The data file, relative to the project root."
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="The holdout's share; stratified, never seen by selection."
    )
    time_column: str | None = Field(
        default=None,
        min_length=1,
        description="Out-of-time validation: the file's application-date column; the holdout is then the most "
        "recent period (from cutoff, or the latest holdout_fraction of rows) and cross-validation runs on the "
        "earlier one. Null: a stratified random holdout.",
    )
    cutoff: date | None = Field(
        default=None, description="YYYY-MM-DD: applications from this date on are the holdout (needs time_column)."
    )
    source: Literal["file", "production"] = Field(
        default="file",
        description="file: the data file above; production: logged applicants joined with their matured outcomes "
        "(mlflow run . -e train -P source=production), the most recent period as the holdout.",
    )
    production: ProductionDataConfig = ProductionDataConfig()

    @model_validator(mode="after")
    def _cutoff_needs_time(self) -> DataConfig:
        if self.cutoff is not None and self.time_column is None:
            raise ValueError("data.cutoff needs data.time_column")
        return self


class CVConfig(_Frozen):
    """Repeated stratified k-fold cross-validation (the published protocol: 10 folds, 3 repeats)."""

    folds: int = Field(default=10, ge=2, le=20, description="Folds per repeat.")
    repeats: int = Field(default=3, ge=1, le=10, description="Repeats, each with its own shuffle.")


class EvaluationConfig(_Frozen):
    """The cost matrix and the fairness evaluation."""

    cost_false_approve: float = Field(default=5, gt=0, description="The cost of a bad applicant accepted.")
    cost_false_decline: float = Field(default=1, gt=0, description="The cost of a good applicant refused.")
    min_group_size: int = Field(default=20, ge=1, description="Smaller protected groups are reported, not gated.")
    favourable_outcome: Literal["not_declined", "approved"] = Field(
        default="not_declined",
        description="What disparate impact compares: not_declined (approved or referred to a human: a decline is "
        "the automated adverse action) or approved (straight approval rates).",
    )


class LogisticParams(_Frozen):
    """One logistic-regression candidate."""

    C: float = Field(default=1.0, gt=0, description="Inverse regularisation strength.")


class XGBoostParams(_Frozen):
    """One XGBoost candidate (defaults: XGBoost's own)."""

    max_depth: int = Field(default=6, ge=1, le=12, description="Tree depth.")
    learning_rate: float = Field(default=0.3, gt=0, le=1, description="Shrinkage per tree.")
    n_estimators: int = Field(default=100, ge=1, le=5000, description="Number of trees.")
    subsample: float = Field(default=1.0, gt=0, le=1, description="Row share per tree.")
    colsample_bytree: float = Field(default=1.0, gt=0, le=1, description="Column share per tree.")
    min_child_weight: float = Field(default=1.0, ge=0, description="Minimum hessian weight in a leaf.")
    reg_lambda: float = Field(default=1.0, ge=0, description="L2 regularisation.")
    gamma: float = Field(default=0.0, ge=0, description="Minimum loss reduction to split.")


class ScorecardParams(_Frozen):
    """One points-scorecard candidate: each field binned (monotone where the schema declares a direction),
    weight of evidence per bin, a logistic regression on the WoE values, points under ``scorecard`` scaling."""

    C: float = Field(default=1.0, gt=0, description="Inverse regularisation strength of the regression on WoE.")
    max_bins: int = Field(default=5, ge=2, le=20, description="Most bins (attributes) per characteristic.")
    min_bin_share: float = Field(
        default=0.05, gt=0, lt=0.5, description="Smallest share of the training rows in one bin."
    )


def _grid(depth: int, rate: float, trees: int, colsample: float, child: float) -> XGBoostParams:
    return XGBoostParams(
        max_depth=depth,
        learning_rate=rate,
        n_estimators=trees,
        subsample=0.8,
        colsample_bytree=colsample,
        min_child_weight=child,
    )


class CandidatesConfig(_Frozen):
    """The candidates, each run through the full cross-validation. A file's ``candidates:`` replaces the
    default grid whole: a kind it leaves out has no candidates."""

    logistic_regression: tuple[LogisticParams, ...] = Field(
        default=(), description="Logistic-regression candidates (the baseline)."
    )
    xgboost: tuple[XGBoostParams, ...] = Field(default=(), description="XGBoost candidates.")
    scorecard: tuple[ScorecardParams, ...] = Field(
        default=(),
        description="Points-scorecard candidates (binning, weight of evidence, logistic regression, points). "
        "Whatever the candidates, every version's validation report shows a scorecard's CV ROC-AUC as a benchmark.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> CandidatesConfig:
        if not self.logistic_regression and not self.xgboost and not self.scorecard:
            raise ValueError("at least one candidate is needed")
        return self


DEFAULT_CANDIDATES = CandidatesConfig(
    logistic_regression=(LogisticParams(C=0.1), LogisticParams(C=0.3), LogisticParams(C=1.0)),
    xgboost=(
        _grid(3, 0.03, 400, 0.3, 1),
        _grid(3, 0.03, 400, 0.4, 1),
        _grid(3, 0.03, 400, 0.4, 2),
        _grid(3, 0.03, 400, 0.3, 3),
        _grid(3, 0.03, 400, 0.8, 1),
        _grid(3, 0.05, 250, 0.4, 1),
        _grid(4, 0.02, 500, 0.3, 1),
        _grid(4, 0.02, 500, 0.4, 1),
        _grid(4, 0.02, 500, 0.3, 2),
        _grid(2, 0.05, 300, 0.3, 1),
    ),
    scorecard=(ScorecardParams(C=1.0, max_bins=5), ScorecardParams(C=0.1, max_bins=8)),
)


class QuickSearchConfig(_Frozen):
    """The first model's search (``make up`` on a fresh machine): the first candidate of each kind under
    a lighter cross-validation, so the first page is up in minutes; ``make train`` runs the full search."""

    folds: int = Field(default=5, ge=2, le=20, description="Folds of the quick search's cross-validation.")
    repeats: int = Field(default=1, ge=1, le=10, description="Its repeats.")
    candidates_per_kind: int = Field(default=1, ge=1, description="The first N candidates of each kind.")


class TrainingConfig(_Frozen):
    """``training.yaml``: how candidates are trained, selected and evaluated."""

    seed: int = Field(default=42, description="Seeds the split, the folds and the models.")
    data: DataConfig = DataConfig()
    cv: CVConfig = CVConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    candidates: CandidatesConfig = Field(
        default=DEFAULT_CANDIDATES,
        description="Three logistic-regression baselines (C 0.1, 0.3, 1), a bounded XGBoost search: shallow "
        "trees, slow learning, strong column subsampling (the lever that mattered most on German Credit), "
        "subsample 0.8, and two points scorecards (up to 5 bins with C 1, up to 8 with C 0.1). A file's "
        "candidates: replaces the grid whole.",
    )
    quick_search: QuickSearchConfig = QuickSearchConfig()
    scorecard_benchmark: bool = Field(
        default=True,
        description="Cross-validate a points scorecard beside the candidates when the grid has none, as every "
        "version's benchmark in its validation report (SR 11-7 benchmarking). Off: the report says no "
        "benchmark was run (a grid with a scorecard candidate always has its benchmark).",
    )

    def quick(self) -> TrainingConfig:
        """This configuration with the quick search's cross-validation and candidates."""
        quick = self.quick_search
        keep = quick.candidates_per_kind
        candidates = CandidatesConfig(
            logistic_regression=self.candidates.logistic_regression[:keep],
            xgboost=self.candidates.xgboost[:keep],
            scorecard=self.candidates.scorecard[:keep],
        )
        return self.model_copy(
            update={"cv": CVConfig(folds=quick.folds, repeats=quick.repeats), "candidates": candidates}
        )
