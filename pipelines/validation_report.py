"""The validation report of a model version (SR 11-7 style), written at registration as an HTML artifact.

Purpose and intended use, data and lineage (digests, row counts, time span), the candidates
tried, the benchmark (a points scorecard's CV ROC-AUC beside the chosen model's, and a chosen
scorecard's points table), holdout metrics with bootstrap confidence intervals, calibration, fairness by protected
group, stability between training and holdout (PSI per feature), the gate results and the known
limitations. Logged to the training run under ``validation_report/`` (the page and its data); the
folder's digest is recorded at registration (and signed with ``CREDIT_RISK_MODEL_SIGNING_KEY``) like
the model's, the version's ``validation_report`` tag names the page, and the API serves it only if it
still matches (``GET /v1/registry/versions/{version}/validation_report``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from sklearn.calibration import calibration_curve

from credit_risk import metrics as credit_metrics
from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.data import Split
from credit_risk.profile import categorical_shares, numeric_edges, numeric_shares, psi
from credit_risk.scoring import ScoringModel

REPORT_PATH = registry.REPORT_PATH
BOOTSTRAP_ROUNDS = 300
_CI_METRICS = ("roc_auc", "gini", "ks", "brier", "expected_cost", "approval_rate")

LIMITATIONS = (
    "German Credit (1970s Germany, 1,000 applicants) oversamples bad credits (30%): probabilities are not "
    "population default rates and need recalibration before use on a real portfolio.",
    "The data carries no application dates: out-of-time validation is not possible on it; the holdout is a "
    "stratified random split of the same period, which overstates stability.",
    "The holdout has a few hundred rows: a single split's AUC moves by several points (see the intervals).",
    "Protected attributes are excluded from the model's inputs but correlated fields can still proxy them: "
    "the fairness figures are monitored in production.",
    "Outcomes of declined applicants are never observed (selection bias): realised performance describes the "
    "approved population only.",
)


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, config: ProjectConfig, *, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, dict[str, float]]:
    """Point estimate and 95% percentile interval of each holdout metric over seeded bootstrap resamples."""
    threshold, evaluation = config.model.decision.approve_below, config.training.evaluation
    point = credit_metrics.classification_metrics(y, p, threshold=threshold, evaluation=evaluation)
    rng = np.random.default_rng(config.training.seed)
    samples: dict[str, list[float]] = {name: [] for name in _CI_METRICS}
    for _ in range(rounds):
        index = rng.integers(0, len(y), len(y))
        if len(np.unique(y[index])) < 2:
            continue
        figures = credit_metrics.classification_metrics(y[index], p[index], threshold=threshold, evaluation=evaluation)
        for name in _CI_METRICS:
            samples[name].append(figures[name])
    return {
        name: {
            "value": float(point[name]),
            "low": float(np.percentile(samples[name], 2.5)),
            "high": float(np.percentile(samples[name], 97.5)),
        }
        for name in _CI_METRICS
    }


def calibration_table(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    observed, predicted = calibration_curve(y, p, n_bins=8, strategy="quantile")
    return {
        "mean_predicted": float(np.mean(p)),
        "observed_rate": float(np.mean(y)),
        "bins": [{"predicted": float(a), "observed": float(b)} for a, b in zip(predicted, observed, strict=True)],
    }


def stability(model: ScoringModel, split: Split, config: ProjectConfig) -> dict[str, float]:
    """PSI of every field and of the probability, holdout against training (bins fixed on training)."""
    out: dict[str, float] = {}
    for spec in config.features.fields:
        train, holdout = split.train_x[spec.name], split.holdout_x[spec.name]
        if spec.type == "categorical":
            codes = list(spec.codes)
            out[spec.name] = psi(categorical_shares(train, codes), categorical_shares(holdout, codes))
        else:
            edges = numeric_edges(train.to_numpy())
            out[spec.name] = psi(numeric_shares(train.to_numpy(), edges), numeric_shares(holdout.to_numpy(), edges))
    p_train = model.predict_frame(split.train_x[list(config.features.input_names)])
    p_holdout = model.predict_frame(split.holdout_x[list(config.features.input_names)])
    edges = numeric_edges(p_train)
    out["probability"] = psi(numeric_shares(p_train, edges), numeric_shares(p_holdout, edges))
    return out


def registration_gates(figures: dict[str, float], fairness: dict[str, Any], config: ProjectConfig) -> list[dict]:
    """The absolute promotion gates on this version's holdout figures (the champion comparison runs at promotion)."""
    gates = config.model.promotion
    lowest = credit_metrics.min_disparate_impact(fairness)
    rows = [
        ("min_auc", figures["roc_auc"], gates.min_auc, figures["roc_auc"] >= gates.min_auc, ">="),
        ("max_brier", figures["brier"], gates.max_brier, figures["brier"] <= gates.max_brier, "<="),
        ("min_disparate_impact", lowest, gates.min_disparate_impact, lowest >= gates.min_disparate_impact, ">="),
    ]
    return [{"gate": g, "value": v, "limit": lim, "passed": bool(ok), "comparison": c} for g, v, lim, ok, c in rows]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def purpose(policy_version: str) -> str:
    """Section 1 of the report: what the model is for, and what not."""
    return (
        "Estimates the probability that a consumer-credit applicant defaults (German Credit's 'bad' label), "
        "turned into a score, a risk band and a decision (approve, refer to a credit officer, decline) by the "
        f"decision policy {policy_version}. Intended for assisted decisions with human review of "
        "referrals; not for applicants outside the feature schema's ranges, nor for other products."
    )


def render(facts: dict[str, Any]) -> str:
    """The report's HTML from its facts (a self-contained page: no scripts, no external files)."""
    esc = html.escape
    lineage = facts["lineage"]
    parts = [
        f"<h1>Validation report: {esc(facts['model_name'])} version {esc(facts['version'])}</h1>",
        f"<p>Generated {esc(facts['generated_at'])} at registration, by the training run {esc(facts['run_id'])}.</p>",
        "<h2>1. Purpose and intended use</h2>",
        f"<p>{esc(facts['purpose'])}</p>",
        "<h2>2. Data and lineage</h2>",
        _table(["item", "value"], [[k, v] for k, v in lineage.items()]),
        "<h2>3. Candidates tried</h2>",
        _table(["candidate", "CV AUC mean", "CV AUC std", "monotone", "selected"], facts["candidates"]),
        "<h2>4. Benchmark: a points scorecard</h2>",
        "<p>SR 11-7 benchmarking: the chosen model beside a scorecard (binned characteristics, weight of "
        "evidence, a logistic regression, points) cross-validated on the same folds.</p>"
        if len(facts["benchmark"]) > 1 or facts.get("points_table")
        else "<p>No benchmark scorecard was cross-validated for this version (the training configuration "
        "turned it off: <code>training.scorecard_benchmark: false</code>).</p>",
        _table(["model", "role", "CV AUC mean", "CV AUC std"], facts["benchmark"]),
        *_points_section(facts.get("points_table")),
        "<h2>5. Holdout metrics with 95% bootstrap intervals</h2>",
        f"<p>{facts['bootstrap_rounds']} seeded resamples of the holdout.</p>",
        _table(
            ["metric", "value", "low", "high"],
            [[name, e["value"], e["low"], e["high"]] for name, e in facts["intervals"].items()],
        ),
        "<h2>6. Calibration</h2>",
        f"<p>Calibration in the large: mean predicted {facts['calibration']['mean_predicted']:.4f}, "
        f"observed default rate {facts['calibration']['observed_rate']:.4f}.</p>",
        _table(
            ["mean predicted (bin)", "observed rate"],
            [[b["predicted"], b["observed"]] for b in facts["calibration"]["bins"]],
        ),
        "<h2>7. Fairness by protected group</h2>",
    ]
    for attribute, entry in facts["fairness"].items():
        groups = entry.get("groups", {})
        rows = [[group, g.get("n"), g.get("approval_rate")] for group, g in groups.items()]
        parts.append(f"<h3>{esc(attribute)}: disparate impact {entry['disparate_impact']:.3f}</h3>")
        parts.append(_table(["group", "applicants", "favourable rate"], rows))
    parts += [
        "<h2>8. Stability between training and holdout (PSI)</h2>",
        "<p>Below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 major shift.</p>",
        _table(["field", "PSI"], sorted(facts["psi"].items())),
        "<h2>9. Gate results at registration</h2>",
        _table(
            ["gate", "value", "limit", "passed"],
            [[g["gate"], g["value"], g["limit"], g["passed"]] for g in facts["gates"]],
        ),
        "<p>The comparison with the champion (max_auc_drop) is evaluated at promotion "
        "and recorded in the alias history.</p>",
        "<h2>10. Known limitations</h2>",
        "<ul>" + "".join(f"<li>{esc(text)}</li>" for text in facts["limitations"]) + "</ul>",
    ]
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:2px 8px}"
    )
    title = f"Validation report v{esc(facts['version'])}"
    head = f"<head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
    return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"


def _points_section(rows: Sequence[Sequence[Any]] | None) -> list[str]:
    """The chosen scorecard's points table (nothing when the chosen model is not a scorecard)."""
    if not rows:
        return []
    return [
        "<h3>The points table of this scorecard</h3>",
        "<p>An applicant's score is the sum of their points, one attribute per characteristic; the points lost "
        "against a characteristic's best attribute are the reasons for a decision.</p>",
        _table(["characteristic", "attribute", "points", "weight of evidence", "goods", "bads"], rows),
    ]


def benchmark_rows(candidates: Sequence[Any], selected: Any, benchmark: Any) -> list[list[Any]]:
    """The chosen model and the benchmark scorecard (one row when the scorecard is the chosen model, or when
    no benchmark was run: ``training.scorecard_benchmark: false``)."""
    rows = [[selected.candidate.name, "chosen", selected.mean, selected.std]]
    if benchmark is not None and benchmark is not selected:
        role = (
            "benchmark (a candidate)" if any(r is benchmark for r in candidates) else "benchmark only (not a candidate)"
        )
        rows.append([benchmark.candidate.name, role, benchmark.mean, benchmark.std])
    return rows


def attach(
    client: MlflowClient,
    version: ModelVersion,
    *,
    model: ScoringModel,
    split: Split,
    config: ProjectConfig,
    candidates: Sequence[Any],
    selected: Any,
    benchmark: Any,
    fairness: dict[str, Any],
    signing_key: str | None = None,
) -> str:
    """Write the report into the version's training run, record its digest (signed with ``signing_key``)
    and tag the version with it; returns the artifact path."""
    y = split.holdout_y.to_numpy()
    p = model.predict_frame(split.holdout_x[list(config.features.input_names)])
    intervals = bootstrap_intervals(y, p, config)
    figures = {name: entry["value"] for name, entry in intervals.items()}
    tags = version.tags or {}
    facts = {
        "model_name": version.name,
        "version": str(version.version),
        "run_id": version.run_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy_version": config.model.decision.policy_version,
        "purpose": purpose(config.model.decision.policy_version),
        "lineage": {
            "data file": str(config.training.data.path),
            "data_sha256": tags.get("data_sha256", "?"),
            "config_sha256": tags.get("config_sha256", "?"),
            "git_commit": tags.get("git_commit", "?"),
            "artifact_sha256": tags.get("artifact_sha256", "?"),
            "feature schema version": tags.get("feature_schema_version", "?"),
            "training rows": len(split.train_x),
            "holdout rows": len(split.holdout_x),
            "bad rate (training)": f"{float(split.train_y.mean()):.3f}",
            "time span": "none recorded: the data has no application dates",
        },
        "candidates": [
            [r.candidate.name, r.mean, r.std, "yes" if r.monotone_ok else "no", "yes" if r is selected else ""]
            for r in candidates
        ],
        "benchmark": benchmark_rows(candidates, selected, benchmark),
        "points_table": None
        if model.scorecard is None
        else [
            [label, attribute, points, woe, goods, bads]
            for label, _, attribute, points, woe, goods, bads in (model.scorecard.points_table())
        ],
        "bootstrap_rounds": BOOTSTRAP_ROUNDS,
        "intervals": intervals,
        "calibration": calibration_table(y, p),
        "fairness": fairness,
        "psi": stability(model, split, config),
        "gates": registration_gates({**figures, "brier": intervals["brier"]["value"]}, fairness, config),
        "limitations": list(LIMITATIONS),
    }
    return registry.record_validation_report(client, version, page=render(facts), data=facts, signing_key=signing_key)
