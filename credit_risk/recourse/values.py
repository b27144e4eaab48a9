"""The values a recourse search tries: a field's bounds and words, round numbers within a region
of the model, the values worth combining, and the model's own split points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from credit_risk.schema import FieldSpec

TOLERANCE = 1e-12


def in_range(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return spec.min <= value <= spec.max  # type: ignore[operator]


def describe(spec: FieldSpec, value: Any) -> str:
    """A value as a person reads it: a category's or a code's label, a number with thousands separators."""
    if spec.type == "categorical" or spec.value_labels:
        return spec.describe_value(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def round_down(top: float, region_low: float, value: float) -> float:
    """The roundest whole number in [region_low, top], rounding by at most a tenth of ``value``."""
    step = 10 ** max(int(math.log10(max(value, 1) / 10)), 0) if value >= 10 else 1
    while step > 1:
        rounded = math.floor(top / step) * step
        if rounded >= region_low:
            return float(rounded)
        step //= 10
    return float(top)


def round_up(bottom: float, region_high: float, value: float) -> float:
    """The roundest whole number in [bottom, region_high], rounding by at most a tenth of ``value``."""
    step = 10 ** max(int(math.log10(max(value, 1) / 10)), 0) if value >= 10 else 1
    while step > 1:
        rounded = math.ceil(bottom / step) * step
        if rounded <= region_high:
            return float(rounded)
        step //= 10
    return float(bottom)


def frontier(probabilities: np.ndarray, decisions: np.ndarray, targets: tuple[int, ...], limit: int) -> list[int]:
    """A field's values worth combining: those that do not succeed alone and lower the risk more than
    every nearer value (its values are nearest first); at most ``limit``, the strongest always kept."""
    keep: list[int] = []
    best = math.inf
    for i, p in enumerate(probabilities.tolist()):
        if int(decisions[i]) in targets:
            break  # from here on the field succeeds alone: a combination with it is not minimal
        if p < best - TOLERANCE:
            keep.append(i)
            best = p
    if len(keep) > limit:
        picks = np.unique(np.linspace(0, len(keep) - 1, limit).round().astype(int))
        keep = [keep[i] for i in picks]
    return keep


def split_values(model: Any) -> dict[int, np.ndarray] | None:
    """Per encoded column, a tree model's split thresholds or a scorecard's bin edges (the same rule:
    ``x < edge`` falls below); None for a linear model."""
    scorecard = getattr(model, "scorecard", None)
    if scorecard is not None:
        return scorecard.split_values()
    booster = getattr(model, "booster", None)
    if booster is None:
        return None
    from credit_risk.trees.layout import TreeEnsemble

    return TreeEnsemble.from_booster(booster).split_values()
