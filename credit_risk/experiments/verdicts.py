"""What an experiment report lets one say, in sentences for people: "not yet enough to tell" included."""

from __future__ import annotations

from credit_risk.config import ExperimentsConfig
from credit_risk.experiments.report import ExperimentReport


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
