"""The live comparison of an experiment's arms, shared by the report job, the route and the page.

Per arm: applicants, the share against the configured one with a sample-ratio test (chi-square),
decision rates with Wilson intervals, the score distribution and its PSI between arms, latency.
In a shadow: the disagreement matrix on the same applicants and who would change, by band. Once
outcomes mature: realized AUC and bad rate per arm with bootstrap intervals, and which arm is
ahead with what confidence. Every verdict is a sentence, "not yet enough to tell" included.

Its parts: :mod:`.rows` (reading the experiment's logged rows and matured outcomes),
:mod:`.report` (the typed report), :mod:`.verdicts` (the sentences) and this module (the figures
and :func:`compare`, :func:`experiment_report`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from credit_risk.config import ExperimentsConfig, ProjectConfig
from credit_risk.decision import DECISIONS
from credit_risk.experiments import stats
from credit_risk.experiments.model import Experiment
from credit_risk.experiments.report import (
    Arm,
    BandChange,
    Disagreement,
    ExperimentReport,
    Interval,
    OutcomeArm,
    Outcomes,
    Rate,
    SampleRatio,
)
from credit_risk.experiments.rows import COLUMNS, read_rows
from credit_risk.experiments.verdicts import verdicts

__all__ = ["COLUMNS", "ExperimentReport", "compare", "experiment_report", "read_rows", "verdicts"]


# ------------------------------------------------------------------ figures


def _rates(decisions: pd.Series, confidence: float) -> dict[str, Rate]:
    total = len(decisions)
    out = {}
    for code in DECISIONS:
        count = int((decisions == code).sum())
        low, high = stats.wilson(count, total, confidence) if total else (None, None)
        out[code] = Rate(count=count, total=total, value=count / total if total else None, low=low, high=high)
    return out


def _quantiles(scores: np.ndarray) -> dict[str, float]:
    if len(scores) == 0:
        return {}
    values = np.quantile(scores, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {name: float(v) for name, v in zip(("p10", "p25", "p50", "p75", "p90"), values, strict=True)}


def _latency(values: pd.Series, q: float) -> float | None:
    finite = values.dropna().to_numpy(dtype=float)
    return float(np.quantile(finite, q)) if len(finite) else None


def _arm(
    arm: str,
    version: str,
    decisions: pd.Series,
    scores: np.ndarray,
    latency: pd.Series | None,
    *,
    share: float | None,
    edges: np.ndarray,
    confidence: float,
) -> Arm:
    histogram = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1)
    return Arm(
        arm=arm,
        version=version,
        applicants=len(decisions),
        share=share,
        rates=_rates(decisions, confidence),
        score_quantiles=_quantiles(scores),
        score_histogram=[int(v) for v in histogram],
        latency_p50_ms=_latency(latency, 0.5) if latency is not None else None,
        latency_p99_ms=_latency(latency, 0.99) if latency is not None else None,
    )


def _edges(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return np.array([])
    return np.unique(np.round(np.quantile(scores, np.linspace(0, 1, 11)[1:-1])))


def _sample_ratio(chosen: int, total: int, share: float, settings: ExperimentsConfig) -> SampleRatio:
    statistic, p_value = (
        stats.sample_ratio_p_value([total - chosen, chosen], [1 - share, share])
        if share < 1
        else (
            0.0,
            1.0,
        )
    )
    return SampleRatio(
        configured_share=share,
        observed_share=chosen / total if total else None,
        chi_square=statistic,
        p_value=p_value,
        mismatch=bool(total and p_value < settings.srm_p_value),
    )


def _disagreement(rows: pd.DataFrame) -> Disagreement:
    matrix = {a: {b: 0 for b in DECISIONS} for a in DECISIONS}
    for (a, b), count in rows.groupby(["decision", "shadow_decision"]).size().items():
        matrix[str(a)][str(b)] = int(count)
    bands = []
    for band, group in rows.groupby("risk_band", sort=True):
        changed = group["decision"] != group["shadow_decision"]
        bands.append(
            BandChange(
                band=str(band),
                applicants=len(group),
                would_change=int(changed.sum()),
                would_approve=int(((group["shadow_decision"] == "approve") & (group["decision"] != "approve")).sum()),
                would_not_approve=int(
                    ((group["decision"] == "approve") & (group["shadow_decision"] != "approve")).sum()
                ),
            )
        )
    agree = int((rows["decision"] == rows["shadow_decision"]).sum())
    return Disagreement(
        applicants=len(rows), agree_share=agree / len(rows) if len(rows) else None, matrix=matrix, by_band=bands
    )


def _outcome_arm(
    arm: str, labels: np.ndarray, probabilities: np.ndarray, settings: ExperimentsConfig
) -> tuple[OutcomeArm, np.ndarray]:
    if len(labels) == 0:
        empty = Interval(value=None, low=None, high=None)
        return OutcomeArm(arm=arm, outcomes=0, bad_rate=empty, auc=empty), np.array([])
    aucs, rates = stats.bootstrap(labels, probabilities, rounds=settings.bootstrap_rounds)
    rate_band = stats.interval(rates, settings.confidence)
    auc_band = stats.interval(aucs, settings.confidence)
    return (
        OutcomeArm(
            arm=arm,
            outcomes=len(labels),
            bad_rate=Interval(
                value=float(labels.mean()),
                low=rate_band[0] if rate_band else None,
                high=rate_band[1] if rate_band else None,
            ),
            auc=Interval(
                value=stats.auc(labels, probabilities),
                low=auc_band[0] if auc_band else None,
                high=auc_band[1] if auc_band else None,
            ),
        ),
        aucs,
    )


def _outcomes(pairs: list[tuple[str, np.ndarray, np.ndarray]], settings: ExperimentsConfig, note: str) -> Outcomes:
    arms, draws = [], {}
    for arm, labels, probabilities in pairs:
        figures, aucs = _outcome_arm(arm, labels, probabilities, settings)
        arms.append(figures)
        draws[arm] = aucs
    ahead, confidence = None, None
    enough = all(a.outcomes >= settings.min_outcomes_per_arm for a in arms)
    if enough and len(draws["champion"]) and len(draws["challenger"]):
        both = np.isfinite(draws["champion"]) & np.isfinite(draws["challenger"])
        if both.any():
            confidence = float(np.mean(draws["challenger"][both] > draws["champion"][both]))
            if confidence >= settings.confidence:
                ahead = "challenger"
            elif 1 - confidence >= settings.confidence:
                ahead = "champion"
    return Outcomes(arms=arms, ahead=ahead, confidence=confidence, coverage_note=note)


def compare(
    rows: pd.DataFrame, experiment: Experiment, settings: ExperimentsConfig, *, as_of: datetime
) -> ExperimentReport:
    """The report of ``experiment`` from its logged rows (:func:`read_rows`' columns and ``label``)."""
    confidence = settings.confidence
    total = len(rows)
    if experiment.mode == "split":
        parts = {arm: rows[rows["experiment_arm"] == arm] for arm in ("champion", "challenger")}
        versions = {"champion": experiment.champion_version, "challenger": experiment.challenger_version}
        edges = _edges(parts["champion"]["score"].to_numpy(dtype=float))
        arms = [
            _arm(
                arm,
                versions[arm],
                part["decision"],
                part["score"].to_numpy(dtype=float),
                part["latency_ms"],
                share=len(part) / total if total else None,
                edges=edges,
                confidence=confidence,
            )
            for arm, part in parts.items()
        ]
        chosen = len(parts["challenger"])
        score_psi = stats.psi(
            parts["champion"]["score"].to_numpy(dtype=float), parts["challenger"]["score"].to_numpy(dtype=float)
        )
        disagreement = None
        matured = rows[rows["label"].notna()]
        pairs = [
            (arm, part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float))
            for arm, part in ((a, matured[matured["experiment_arm"] == a]) for a in ("champion", "challenger"))
        ]
        note = "Outcomes exist only for approved and booked applicants: each arm's figures describe its own approvals."
    else:
        shadowed = rows[rows["shadow_decision"].notna()]
        chosen = len(shadowed)
        champion_scores = shadowed["score"].to_numpy(dtype=float)
        challenger_scores = shadowed["shadow_score"].to_numpy(dtype=float)
        edges = _edges(champion_scores)
        arms = [
            _arm(
                "champion",
                experiment.champion_version,
                shadowed["decision"],
                champion_scores,
                shadowed["latency_ms"],
                share=chosen / total if total else None,
                edges=edges,
                confidence=confidence,
            ),
            _arm(
                "challenger",
                experiment.challenger_version,
                shadowed["shadow_decision"],
                challenger_scores,
                None,
                share=chosen / total if total else None,
                edges=edges,
                confidence=confidence,
            ),
        ]
        score_psi = stats.psi(champion_scores, challenger_scores)
        disagreement = _disagreement(shadowed)
        matured = shadowed[shadowed["label"].notna()]
        labels = matured["label"].to_numpy(dtype=int)
        pairs = [
            ("champion", labels, matured["probability"].to_numpy(dtype=float)),
            ("challenger", labels, matured["shadow_probability"].to_numpy(dtype=float)),
        ]
        note = (
            "A shadow's outcomes are those of the applicants the champion approved: both versions are "
            "compared on the same applicants, and the challenger's own approvals are not observed."
        )
    sample_ratio = _sample_ratio(chosen, total, experiment.share, settings) if total else None
    outcomes = _outcomes(pairs, settings, note)
    report = ExperimentReport(
        experiment=experiment.to_json(),
        as_of=as_of.astimezone(UTC).isoformat(timespec="seconds"),
        applicants=total,
        arms=arms,
        score_edges=[float(e) for e in edges],
        score_psi=score_psi,
        sample_ratio=sample_ratio,
        disagreement=disagreement,
        outcomes=outcomes,
        verdicts=[],
    )
    return report.model_copy(update={"verdicts": verdicts(report, settings)})


def experiment_report(
    config: ProjectConfig,
    experiment: Experiment,
    *,
    log_dir: Path,
    outcomes_dir: Path | None,
    as_of: datetime | None = None,
) -> ExperimentReport:
    """Read the experiment's rows (and matured outcomes) and compare its arms."""
    as_of = as_of or datetime.now(UTC)
    rows = read_rows(log_dir, outcomes_dir, experiment, as_of=as_of, maturity_days=config.model.outcomes.maturity_days)
    return compare(rows, experiment, config.model.experiments, as_of=as_of)
