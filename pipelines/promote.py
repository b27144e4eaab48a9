"""Promote: a champion/challenger gate in front of the serving alias.

``mlflow run . -e promote [-P reason=...] [-P force=true]``. The challenger and
the current champion are scored on the same holdout; the serving alias moves
only when every configured gate holds, or on an explicit override with a
reason. A refused promotion exits non-zero and names each failed gate.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ProjectConfig, Settings, load_project_config
from pipelines import evaluate
from pipelines.cli import add_config_dir, run_job
from pipelines.data import Split
from pipelines.outcomes_data import gate_split

log = logging.getLogger(__name__)


class PromotionRefused(registry.RegistryError):
    """One or more gates failed; the message lists them with their figures."""


@dataclass(frozen=True)
class Evaluation:
    version: str
    metrics: dict[str, float]
    min_disparate_impact: float


def evaluate_version(client: MlflowClient, name: str, version: str, split: Split, config: ProjectConfig) -> Evaluation:
    """Score the holdout with the registered version through MLflow's own pyfunc loader."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    p = model.predict(split.holdout_x[config.features.input_names])
    metrics, fairness = evaluate.evaluate_predictions(p, split.holdout_x, split.holdout_y.to_numpy(), config)
    return Evaluation(version, metrics, evaluate.min_disparate_impact(fairness))


def failed_gates(challenger: Evaluation, champion: Evaluation | None, config: ProjectConfig) -> list[str]:
    """Every gate that does not hold, with the figures."""
    gates = config.model.promotion
    failures = []
    auc, brier = challenger.metrics["roc_auc"], challenger.metrics["brier"]
    if auc < gates.min_auc:
        failures.append(f"min_auc: challenger AUC {auc:.4f} < {gates.min_auc:.4f}")
    if brier > gates.max_brier:
        failures.append(f"max_brier: challenger Brier {brier:.4f} > {gates.max_brier:.4f}")
    if challenger.min_disparate_impact < gates.min_disparate_impact:
        failures.append(
            f"min_disparate_impact: challenger {challenger.min_disparate_impact:.3f} < {gates.min_disparate_impact:.3f}"
        )
    if champion is not None:
        drop = champion.metrics["roc_auc"] - auc
        if drop > gates.max_auc_drop:
            failures.append(
                f"max_auc_drop: challenger AUC {auc:.4f} is {drop:.4f} below champion "
                f"v{champion.version} ({champion.metrics['roc_auc']:.4f}); allowed {gates.max_auc_drop:.4f}"
            )
    return failures


def gate_figures(challenger: Evaluation, champion: Evaluation | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "challenger_auc": round(challenger.metrics["roc_auc"], 6),
        "challenger_brier": round(challenger.metrics["brier"], 6),
        "challenger_min_disparate_impact": round(challenger.min_disparate_impact, 6),
    }
    if champion is not None:
        figures["champion_version"] = champion.version
        figures["champion_auc"] = round(champion.metrics["roc_auc"], 6)
    return figures


def promote(
    config: ProjectConfig, settings: Settings, *, reason: str = "", force: bool = False, version: str | None = None
) -> registry.AliasEvent:
    """Move the serving alias to the challenger (or ``version``) if the gates hold."""
    reg = config.model.registry
    client = registry.connect(settings, config.root)
    if force and not reason.strip():
        raise PromotionRefused("an override (force) needs a reason")
    if version is not None:
        target = registry.get_version(client, reg.model_name, version)
        if target is None:
            raise PromotionRefused(f"version {version} of {reg.model_name!r} does not exist")
    else:
        target = registry.version_for_alias(client, reg.model_name, reg.challenger_alias)
        if target is None:
            raise PromotionRefused(f"no version holds the alias {reg.challenger_alias!r}: train one first")
    current = registry.version_for_alias(client, reg.model_name, reg.serving_alias)
    if current is not None and str(current.version) == str(target.version):
        raise PromotionRefused(f"version {target.version} already holds {reg.serving_alias!r}")
    split = gate_split(config, settings, target)
    challenger = evaluate_version(client, reg.model_name, str(target.version), split, config)
    champion = evaluate_version(client, reg.model_name, str(current.version), split, config) if current else None
    failures = failed_gates(challenger, champion, config)
    figures = gate_figures(challenger, champion)
    experiment_id = registry.ensure_experiment(client, reg.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"promote v{target.version}"):
        mlflow.log_metrics({k: float(v) for k, v in figures.items() if not isinstance(v, str)})
        mlflow.log_dict({"failed_gates": failures, "forced": force, "reason": reason}, "promotion.json")
    if failures and not force:
        raise PromotionRefused(
            "promotion of version {} refused:\n  - {}".format(target.version, "\n  - ".join(failures))
        )
    action = "promote-override" if failures else "promote"
    if failures:
        figures["overridden_gates"] = failures
    event = registry.move_alias(
        client,
        reg.model_name,
        reg.serving_alias,
        target.version,
        action=action,
        reason=reason or "gates passed",
        figures=figures,
    )
    log.info("%s now points to version %s (was %s)", reg.serving_alias, event.to_version, event.from_version)
    return event


def _bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes"}:
        return True
    if text.lower() in {"0", "false", "no", ""}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--reason", default="", help="why; required with --force")
    parser.add_argument("--force", type=_bool, default=False, help="promote even if gates fail (needs a reason)")
    parser.add_argument("--version", default="", help="promote this version instead of the challenger")
    args = parser.parse_args(argv)
    settings = Settings()
    return run_job(
        lambda: promote(
            load_project_config(args.config_dir or settings.config_dir),
            settings,
            reason=args.reason,
            force=args.force,
            version=args.version or None,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
