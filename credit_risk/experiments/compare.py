"""The live comparison of an experiment's arms, shared by the report job, the route and the page.

Per arm: applicants, the share against the configured one with a sample-ratio test (chi-square),
decision rates with Wilson intervals, the score distribution and its PSI between arms, latency.
In a shadow: the disagreement matrix on the same applicants and who would change, by band. Once
outcomes mature: realized AUC and bad rate per arm with bootstrap intervals, and which arm is
ahead with what confidence. Every verdict is a sentence, "not yet enough to tell" included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from credit_risk.config import ExperimentsConfig, ProjectConfig
from credit_risk.decision import DECISIONS
from credit_risk.decision_log.record import log_columns
from credit_risk.experiments import stats
from credit_risk.experiments.model import Experiment
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.outcomes.table import OutcomeTable

COLUMNS = (
    "request_id",
    "scored_at",
    "model_name",
    "model_version",
    "probability",
    "score",
    "risk_band",
    "decision",
    "latency_ms",
    "experiment_id",
    "experiment_arm",
    "shadow_version",
    "shadow_probability",
    "shadow_score",
    "shadow_risk_band",
    "shadow_decision",
)
_SCHEMA = log_columns(*COLUMNS)  # typed as the log writes them; a name that is no column fails at import


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Model):
    count: int
    total: int
    value: float | None
    low: float | None
    high: float | None


class Interval(_Model):
    value: float | None
    low: float | None
    high: float | None


class Arm(_Model):
    """One arm's live figures (in a shadow: the same applicants, decided by each version)."""

    arm: str
    version: str
    applicants: int
    share: float | None  # of all the experiment's applicants (a shadow: the shadowed share)
    rates: dict[str, Rate]  # approve, review, decline
    score_quantiles: dict[str, float]  # p10, p25, p50, p75, p90
    score_histogram: list[int]  # counts on the report's common score edges
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class SampleRatio(_Model):
    configured_share: float
    observed_share: float | None
    chi_square: float
    p_value: float
    mismatch: bool


class BandChange(_Model):
    band: str
    applicants: int
    would_change: int
    would_approve: int  # the challenger approves, the champion did not (swap-in)
    would_not_approve: int  # the champion approved, the challenger would not (swap-out)


class Disagreement(_Model):
    applicants: int
    agree_share: float | None
    matrix: dict[str, dict[str, int]]  # champion decision -> challenger decision -> applicants
    by_band: list[BandChange]


class OutcomeArm(_Model):
    arm: str
    outcomes: int
    bad_rate: Interval
    auc: Interval


class Outcomes(_Model):
    arms: list[OutcomeArm]
    ahead: str | None  # "challenger", "champion", or None (not enough, or neither with the confidence)
    confidence: float | None  # the share of resamples in which the challenger's AUC is higher
    coverage_note: str


class ExperimentReport(_Model):
    experiment: dict[str, Any]
    as_of: str
    applicants: int
    arms: list[Arm]
    score_edges: list[float]
    score_psi: float | None  # challenger's scores against the champion's
    sample_ratio: SampleRatio | None
    disagreement: Disagreement | None
    outcomes: Outcomes | None
    verdicts: list[str]  # sentences for people: what can and cannot be said yet


# ------------------------------------------------------------------ reading


def read_rows(
    log_dir: Path,
    outcomes_dir: Path | None,
    experiment: Experiment,
    *,
    as_of: datetime,
    maturity_days: int,
) -> pd.DataFrame:
    """The experiment's logged decisions, each with its outcome ``label`` once matured (else NaN)."""
    schema = _SCHEMA
    start = datetime.fromisoformat(experiment.started_at).date() if experiment.started_at else date.min
    end = datetime.fromisoformat(experiment.stopped_at).date() if experiment.stopped_at else as_of.date()
    table = read_decisions(log_dir, model_name=experiment.model_name, start=start, end=end, schema=schema)
    table = table.filter(pc.equal(table["experiment_id"], experiment.id))
    frame = table.to_pandas()
    frame["label"] = np.nan
    if outcomes_dir is None or not Path(outcomes_dir).is_dir() or frame.empty:
        return frame
    current = OutcomeTable(Path(outcomes_dir)).current().to_pandas()
    if current.empty:
        return frame
    current = current[pd.to_datetime(current["observed_at"], utc=True) <= as_of]
    labels = dict(zip(current["request_id"], current["label"], strict=True))
    matured = pd.to_datetime(frame["scored_at"], utc=True) <= as_of - timedelta(days=maturity_days)
    frame["label"] = [
        labels.get(rid, np.nan) if ok else np.nan for rid, ok in zip(frame["request_id"], matured, strict=True)
    ]
    return frame


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


def verdicts(report: ExperimentReport, settings: ExperimentsConfig) -> list[str]:
    """What can be said, in sentences for people; plainly when there is not yet enough to tell."""
    said = []
    smallest = min((arm.applicants for arm in report.arms), default=0)
    if smallest < settings.min_per_arm:
        said.append(
            f"Not yet enough to tell: the smaller arm has {smallest} applicants; the comparison needs at least "
            f"{settings.min_per_arm} in each."
        )
    ratio = report.sample_ratio
    if ratio is not None and ratio.mismatch:
        said.append(
            f"The challenger's share is {ratio.observed_share:.1%} against {ratio.configured_share:.1%} configured "
            f"(chi-square p = {ratio.p_value:.2g}): the assignment is broken, not an arm better; do not read the "
            "comparison until it is explained."
        )
    elif ratio is not None and ratio.observed_share is not None:
        said.append(
            f"The challenger's share is {ratio.observed_share:.1%} against {ratio.configured_share:.1%} configured: "
            "no sample-ratio mismatch."
        )
    if report.score_psi is not None and smallest >= settings.min_per_arm:
        level = (
            "stable" if report.score_psi < 0.1 else "a moderate shift" if report.score_psi < 0.25 else "a major shift"
        )
        said.append(f"Score distribution between the arms: PSI {report.score_psi:.3f} ({level}).")
    if report.disagreement is not None and report.disagreement.applicants:
        changed = sum(band.would_change for band in report.disagreement.by_band)
        said.append(
            f"The challenger would decide {changed} of {report.disagreement.applicants} shadowed applicants "
            "differently."
        )
    outcomes = report.outcomes
    if outcomes is not None:
        counts = [arm.outcomes for arm in outcomes.arms]
        if min(counts, default=0) < settings.min_outcomes_per_arm:
            said.append(
                f"Not yet enough matured outcomes to compare on outcomes ({' and '.join(map(str, counts))}; "
                f"at least {settings.min_outcomes_per_arm} per arm are needed)."
            )
        elif outcomes.ahead is not None:
            share = outcomes.confidence if outcomes.ahead == "challenger" else 1 - (outcomes.confidence or 0)
            said.append(f"On realized AUC the {outcomes.ahead} is ahead ({share:.0%} of resamples).")
        elif outcomes.confidence is not None:
            said.append(
                f"Neither arm is ahead on realized AUC with {settings.confidence:.0%} confidence (the challenger is "
                f"higher in {outcomes.confidence:.0%} of resamples)."
            )
    return said


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
