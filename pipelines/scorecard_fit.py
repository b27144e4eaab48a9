"""Fit a points scorecard: monotone optimal binning per field, weight of evidence, a logistic regression, points.

Binning is optbinning's ``OptimalBinning`` (constraint programming on the
training rows): a numeric field whose schema declares a direction is binned so
that its default rate moves only that way (``monotone: increasing`` raises the
risk with the value), any other numeric field monotone in whichever direction
fits; a categorical field's codes are grouped. The weights of evidence and
counts are then computed here from the bins, the regression is fitted on them,
and the result is the plain data of :class:`credit_risk.scorecard.Scorecard`.
optbinning is imported only here: scoring never needs it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from credit_risk.config import ScorecardConfig, ScorecardParams
from credit_risk.schema import FieldSpec
from credit_risk.scorecard import Attribute, Characteristic, Scorecard
from credit_risk.scoring import Encoder

_TREND = {1: "ascending", -1: "descending", 0: "auto_asc_desc"}  # the default rate's trend in the value


def fit_scorecard(
    matrix: np.ndarray,
    y: np.ndarray,
    *,
    encoder: Encoder,
    params: dict[str, Any],
    scaling: ScorecardConfig,
    seed: int,
) -> Scorecard:
    """A scorecard fitted on encoded training rows (``y``: 1 = default)."""
    typed = ScorecardParams.model_validate(params)
    y = np.asarray(y, dtype=np.int64)
    bins = [_bin_field(spec, _field_values(matrix, encoder, i), y, typed) for i, spec in enumerate(encoder.fields)]
    woe = np.column_stack([b.woe_of_rows for b in bins])
    regression = LogisticRegression(C=typed.C, max_iter=2000, random_state=seed)
    regression.fit(woe, y)
    coefficients = regression.coef_[0]
    intercept = float(regression.intercept_[0])
    n = len(bins)
    characteristics = tuple(
        Characteristic(
            field=spec.name,
            coefficient=float(coefficient),
            attributes=tuple(
                Attribute(
                    points=round(float(-(coefficient * a.woe + intercept / n) * scaling.factor + scaling.offset / n)),
                    woe=a.woe,
                    goods=a.goods,
                    bads=a.bads,
                    low=a.low,
                    high=a.high,
                    codes=a.codes,
                    missing=a.missing,
                )
                for a in b.attributes
            ),
        )
        for spec, b, coefficient in zip(encoder.fields, bins, coefficients, strict=True)
    )
    return Scorecard(
        characteristics, intercept=intercept, factor=scaling.factor, offset=scaling.offset, encoder=encoder
    )


class _Binned:
    """A field's attributes (points still 0) and the WoE of each training row."""

    def __init__(self, attributes: list[Attribute], woe_of_rows: np.ndarray) -> None:
        self.attributes = attributes
        self.woe_of_rows = woe_of_rows


def _field_values(matrix: np.ndarray, encoder: Encoder, index: int) -> np.ndarray:
    """A field's training values: numbers (NaN: missing), or codes (None: missing) decoded from the one-hot."""
    columns = np.flatnonzero(encoder.field_of_column == index)
    spec = encoder.fields[index]
    if spec.is_numeric:
        return matrix[:, columns[0]].astype(np.float64)
    block = matrix[:, columns]
    codes = np.asarray(spec.codes, dtype=object)[np.argmax(block, axis=1)]
    codes[block.sum(axis=1) == 0] = None
    return codes


def _bin_field(spec: FieldSpec, values: np.ndarray, y: np.ndarray, params: ScorecardParams) -> _Binned:
    from optbinning import OptimalBinning  # training only: imported when a scorecard is fitted

    numeric = spec.is_numeric
    missing = np.isnan(values) if numeric else np.asarray([v is None for v in values], dtype=bool)
    present = ~missing
    if not present.any():
        raise ValueError(f"{spec.name}: no training row has a value to bin")
    binning = OptimalBinning(
        name=spec.name,
        dtype="numerical" if numeric else "categorical",
        solver="cp",
        monotonic_trend=_TREND[spec.monotone_sign] if numeric else None,
        max_n_bins=params.max_bins,
        min_bin_size=params.min_bin_share,
    )
    if numeric:
        binning.fit(values[present], y[present])
        edges = [float(np.float32(s)) for s in binning.splits]  # as the float32 encoding compares them
        index = np.searchsorted(np.asarray(edges), values, side="right")
        ranges = list(zip([None, *edges], [*edges, None], strict=True))
        groups: list[tuple[str, ...]] = [()] * len(ranges)
    else:
        binning.fit(values[present].astype(str), y[present])
        groups = [tuple(str(code) for code in group) for group in binning.splits]
        unseen = [code for code in spec.codes if not any(code in g for g in groups)]
        groups += [(code,) for code in unseen]  # a category training never saw: its own attribute, WoE 0
        group_of = {code: g for g, codes in enumerate(groups) for code in codes}
        index = np.asarray([group_of.get(v, 0) if v is not None else 0 for v in values], dtype=np.intp)
        ranges = [(None, None)] * len(groups)
    total_goods, total_bads = int(np.sum(y == 0)), int(np.sum(y == 1))
    attributes, woe = [], []
    for b, ((low, high), codes) in enumerate(zip(ranges, groups, strict=True)):
        rows = present & (index == b)
        goods, bads = int(np.sum(y[rows] == 0)), int(np.sum(y[rows] == 1))
        woe.append(_woe(goods, bads, total_goods, total_bads))
        attributes.append(Attribute(points=0, woe=0.0, goods=goods, bads=bads, low=low, high=high, codes=codes))
    if numeric and spec.monotone_sign:
        # a rising risk is a falling WoE: keep the declared direction exactly (optbinning's bins already do)
        woe = list(np.minimum.accumulate(woe) if spec.monotone_sign > 0 else np.maximum.accumulate(woe))
    attributes = [
        Attribute(a.points, float(w), a.goods, a.bads, a.low, a.high, a.codes)
        for a, w in zip(attributes, woe, strict=True)
    ]
    woe_of_rows = np.zeros(len(values))
    woe_of_rows[present] = np.asarray(woe)[index[present]]
    if not spec.required:
        goods, bads = int(np.sum(y[missing] == 0)), int(np.sum(y[missing] == 1))
        missing_woe = _woe(goods, bads, total_goods, total_bads)
        attributes.append(Attribute(points=0, woe=missing_woe, goods=goods, bads=bads, missing=True))
        woe_of_rows[missing] = missing_woe
    return _Binned(attributes, woe_of_rows)


def _woe(goods: int, bads: int, total_goods: int, total_bads: int) -> float:
    """ln(share of goods / share of bads); 0 for an empty bin, half a count added where one side has none."""
    if goods == 0 and bads == 0:
        return 0.0
    if goods == 0 or bads == 0:
        goods, bads = goods + 0.5, bads + 0.5  # type: ignore[assignment]
    return math.log((goods / total_goods) / (bads / total_bads))
