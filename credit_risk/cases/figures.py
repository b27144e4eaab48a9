"""Override and service-level figures from the decided cases, and outcomes by who approved the loan.

SR 11-7 expects overrides to be tracked and analysed: the share of reviewed decisions where the
reviewer overrode the model, by risk band, reviewer and reason; whether the queue keeps its due
times; and, once loans mature, the bad rate of loans the model approved beside those a reviewer
approved (the model referred or declined them), band by band.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from credit_risk.performance import ApprovedBand, OverrideRate, OversightFigures


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _grouped(cases: Iterable[Mapping[str, Any]], key: str) -> dict[str, OverrideRate]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        group = counts[str(case[key])]
        group[0] += 1
        group[1] += int(bool(case["override"]))
    return {
        name: OverrideRate(decided=decided, overrides=overrides, rate=_rate(overrides, decided))
        for name, (decided, overrides) in sorted(counts.items())
    }


def oversight_figures(
    decided: Sequence[Mapping[str, Any]],
    *,
    request_ids: Sequence[str],
    bands: Sequence[str],
    decisions: Sequence[str],
    labels: np.ndarray,
    band_names: Sequence[str],
) -> OversightFigures:
    """``decided``: the store's decided cases; the other arguments are the matured decisions joined with
    their outcomes (``labels``: 1 bad, 0 good, NaN unknown), one entry per decision."""
    final = {case["request_id"]: case["final_decision"] for case in decided}
    model_bad: dict[str, list[float]] = defaultdict(list)
    human_bad: dict[str, list[float]] = defaultdict(list)
    for request_id, band, decision, label in zip(request_ids, bands, decisions, labels, strict=True):
        if np.isnan(label):
            continue
        if request_id in final:
            if final[request_id] == "approve":
                human_bad[band].append(float(label))
        elif decision == "approve":
            model_bad[band].append(float(label))
    approved = [
        ApprovedBand(
            band=band,
            model_approved=len(model_bad[band]),
            model_bad_rate=float(np.mean(model_bad[band])) if model_bad[band] else None,
            human_approved=len(human_bad[band]),
            human_bad_rate=float(np.mean(human_bad[band])) if human_bad[band] else None,
        )
        for band in band_names
    ]
    overrides = sum(bool(case["override"]) for case in decided)
    on_time = sum(case["decided_at"] <= case["due_at"] for case in decided)
    return OversightFigures(
        cases_decided=len(decided),
        overrides=overrides,
        override_rate=_rate(overrides, len(decided)),
        override_by_band=_grouped(decided, "risk_band"),
        override_by_reviewer=_grouped(decided, "decided_by"),
        overrides_by_reason=dict(
            sorted(
                {
                    code: sum(1 for c in decided if c["override"] and c["reason_code"] == code)
                    for code in {c["reason_code"] for c in decided if c["override"]}
                }.items()
            )
        ),
        decided_within_due=on_time,
        service_level=_rate(on_time, len(decided)),
        approved_by_band=approved,
    )
