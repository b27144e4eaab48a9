"""The promotion gates: a version scored on the holdout from a verified download, as serving scores it.

The version's folder is fetched with :func:`credit_risk.registry.fetch_verified`
(digest, and signature when a key is set) and read as plain data by
:class:`credit_risk.scoring.ScoringModel`: the booster and JSON files, never
the pyfunc code stored beside them, so nothing from the artifact runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import metrics, registry
from credit_risk.config import ProjectConfig
from credit_risk.data import Split
from credit_risk.schema import DataValidationError
from credit_risk.scoring import ScoringModel


@dataclass(frozen=True)
class Evaluation:
    """One version's holdout figures, from the artifacts whose digest was checked."""

    version: str
    digest: str
    metrics: dict[str, float]
    min_disparate_impact: float


@dataclass(frozen=True)
class GateResult:
    """One gate: its figure, its limit, and whether it held (``value`` is None when not computable)."""

    name: str
    passed: bool
    value: float | None
    limit: float
    comparison: str  # ">=" or "<=": what value must be against limit
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_version(
    client: MlflowClient, version: ModelVersion, split: Split, config: ProjectConfig, *, signing_key: str | None
) -> Evaluation:
    """Score the holdout with a verified copy of ``version`` (refused: :class:`~registry.UnverifiedArtifactError`)."""
    number = str(version.version)
    with tempfile.TemporaryDirectory(prefix="credit-risk-gates-") as tmp:
        local = registry.fetch_verified(client, version, Path(tmp), signing_key=signing_key)
        model = ScoringModel.load(registry.scoring_dir(local), threads=1)
    missing = [name for name in model.schema.input_names if name not in split.holdout_x.columns]
    if missing:
        raise DataValidationError(f"version {number} needs fields the holdout does not have: {missing}")
    p = model.predict_frame(split.holdout_x[list(model.schema.input_names)])
    figures, fairness = metrics.evaluate_predictions(p, split.holdout_x, split.holdout_y.to_numpy(), config)
    digest = version.tags[registry.ARTIFACT_DIGEST_TAG]
    return Evaluation(number, digest, figures, metrics.min_disparate_impact(fairness))


def _gate(name: str, value: float, limit: float, comparison: str, text: str) -> GateResult:
    passed = value >= limit if comparison == ">=" else value <= limit
    sign = comparison if passed else ("<" if comparison == ">=" else ">")
    return GateResult(name, passed, value, limit, comparison, f"{name}: {text.format(value=value, sign=sign)}")


def evaluate_gates(
    challenger: Evaluation,
    champion: Evaluation | None,
    config: ProjectConfig,
    *,
    champion_version: str | None = None,
    champion_error: str | None = None,
) -> list[GateResult]:
    """Every configured gate, passed or not, with its figure and limit.

    ``champion_error``: the champion could not be evaluated (its artifacts
    failed verification); the comparison gate then fails, naming why.
    """
    gates = config.model.promotion
    auc, brier = challenger.metrics["roc_auc"], challenger.metrics["brier"]
    results = [
        _gate("min_auc", auc, gates.min_auc, ">=", f"challenger AUC {{value:.4f}} {{sign}} {gates.min_auc:.4f}"),
        _gate(
            "max_brier", brier, gates.max_brier, "<=", f"challenger Brier {{value:.4f}} {{sign}} {gates.max_brier:.4f}"
        ),
        _gate(
            "min_disparate_impact",
            challenger.min_disparate_impact,
            gates.min_disparate_impact,
            ">=",
            f"challenger {{value:.3f}} {{sign}} {gates.min_disparate_impact:.3f}",
        ),
    ]
    if champion is not None:
        best = champion.metrics["roc_auc"]
        drop = best - auc
        text = (
            f"challenger AUC {auc:.4f} is {{value:.4f}} below champion v{champion.version} ({best:.4f}); "
            f"allowed {gates.max_auc_drop:.4f}"
        )
        results.append(_gate("max_auc_drop", drop, gates.max_auc_drop, "<=", text))
    elif champion_error is not None:
        message = f"max_auc_drop: champion v{champion_version} cannot be compared: {champion_error}"
        results.append(GateResult("max_auc_drop", False, None, gates.max_auc_drop, "<=", message))
    else:
        message = "max_auc_drop: no champion yet: only the absolute gates apply"
        results.append(GateResult("max_auc_drop", True, None, gates.max_auc_drop, "<=", message))
    return results


def gate_figures(challenger: Evaluation, champion: Evaluation | None) -> dict[str, Any]:
    """The figures recorded with a promotion in the alias history."""
    figures: dict[str, Any] = {
        "challenger_auc": round(challenger.metrics["roc_auc"], 6),
        "challenger_brier": round(challenger.metrics["brier"], 6),
        "challenger_min_disparate_impact": round(challenger.min_disparate_impact, 6),
        "challenger_artifact_sha256": challenger.digest,
    }
    if champion is not None:
        figures["champion_version"] = champion.version
        figures["champion_auc"] = round(champion.metrics["roc_auc"], 6)
    return figures
