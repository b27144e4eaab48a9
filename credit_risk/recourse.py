"""What would change the decision: alternative applications the served model would approve (recourse).

For a declined or referred applicant, :meth:`RecourseSearch.search` returns up to
``recourse.max_alternatives`` alternatives, each changing at most
``recourse.max_changes`` fields, ranked by the configured cost. Only fields the
feature schema marks actionable move, and only in their direction and within
their bounds (``FieldSpec.recourse``); immutable, unused and protected fields
never change.

The search follows the model's own structure. A tree ensemble's output in one
column changes only where a split threshold lies, so a numeric field's
candidate values are the values just past each threshold in the allowed
direction (rounded within the same region, so the amount reads 9,400 rather
than 9,437 and scores the same); a categorical field's are the codes further
along its declared order. Single changes are scored as one matrix, then pairs
(each field reduced to its ``values_per_field`` best values: those that lower
the risk more than any smaller change of the same field), then, with
``max_changes: 3``, triples grown from the most promising pairs. A combination
containing a change that already succeeds alone is not minimal and is left
out. For a logistic model the candidates are the training profile's bin edges.

Every alternative returned was scored again, alone, through the engine's
decision path, the one the service answers with: it reaches the decision it
claims, or it is dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from credit_risk.config import RecourseConfig
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.schema import FieldSpec

_BEAM = 8  # pairs extended into triples
_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    label: str
    from_value: Any
    to_value: Any
    from_label: str
    to_label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": self.label,
            "from": self.from_value,
            "to": self.to_value,
            "from_label": self.from_label,
            "to_label": self.to_label,
        }


@dataclass(frozen=True, slots=True)
class Alternative:
    changes: tuple[Change, ...]
    decision: str
    probability: float
    cost: float

    @property
    def summary(self) -> str:
        """The changes in the schema's words: "Credit amount (DM) 15,000 to 9,500; Loan duration ... 60 to 36"."""
        return "; ".join(f"{c.label} {c.from_label} to {c.to_label}" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "decision": self.decision,
            "probability_of_default": self.probability,
            "cost": round(self.cost, 6),
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class RecourseAnswer:
    alternatives: tuple[Alternative, ...]
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"recourse": [a.to_json() for a in self.alternatives], "recourse_note": self.note}


@dataclass(frozen=True, slots=True)
class _Edits:
    """One field's candidate values for one applicant: values, their costs and encoded column slices."""

    field: int  # index into the actionable fields
    values: list[Any]
    costs: np.ndarray
    slices: np.ndarray  # (len(values), width of the field's columns) float32


class RecourseSearch:
    """The search for one loaded model version: built once, used for every applicant."""

    def __init__(self, engine: DecisionEngine, config: RecourseConfig) -> None:
        self.engine = engine
        self.config = config
        model = engine.model
        encoder = model.encoder
        self.encoder = encoder
        self.fields: tuple[FieldSpec, ...] = tuple(
            f for f in encoder.fields if f.recourse is not None and f.recourse.sign != 0 and not f.protected
        )
        self._columns = [np.flatnonzero(encoder.field_of_column == encoder.fields.index(f)) for f in self.fields]
        self._splits = _split_values(model)
        profile = (getattr(model, "profile", None) or {}).get("features", {})
        self._edges = {f.name: profile.get(f.name, {}).get("edges", []) for f in self.fields}

    @classmethod
    def for_engine(cls, engine: DecisionEngine, config: RecourseConfig) -> RecourseSearch:
        return cls(engine, config)

    # ------------------------------------------------------------ the search

    def search(self, record: Mapping[str, Any], *, decision: str | None = None) -> RecourseAnswer:
        """Alternatives for one validated record; ``decision`` is its decision if already known."""
        base = self.encoder.encode_records([record])
        if decision is None:
            decision = DECISIONS[int(self.engine.decide(base, with_reasons=False).decision_index[0])]
        if decision == "approve":
            return RecourseAnswer((), "The application is approved: nothing needs to change.")
        targets = (0, 1) if decision == "decline" else (0,)
        if not self.fields:
            return RecourseAnswer((), "The model's feature schema marks no field as one the applicant can change.")
        edits = [e for e in (self._edits(i, record) for i in range(len(self.fields))) if e is not None]
        if not edits:
            return RecourseAnswer((), self._none_note(decision, "none of them can move further within its limits"))
        found = self._combinations(base, edits, targets)
        alternatives = self._verified(record, edits, found)
        if not alternatives:
            return RecourseAnswer((), self._none_note(decision, None))
        return RecourseAnswer(tuple(alternatives), None)

    def search_logged(self, row: Mapping[str, Any]) -> tuple[str | None, RecourseAnswer]:
        """A logged decision's row searched on this version: (this version's decision, the answer).

        The row's inputs are checked against this version's schema first: a field the log dropped or
        hashed (prediction_log.drop_fields / hash_fields), or a value this version does not know,
        gives no search but a note naming the field."""
        record: dict[str, Any] = {}
        for spec in self.encoder.fields:
            value = row.get(spec.name)
            if value is None:
                usable = not spec.required
            else:
                usable = value in spec.codes if spec.type == "categorical" else _in_range(spec, value)
            if not usable:
                note = f"The logged inputs cannot be scored again: {spec.label} is not as the model expects it."
                return None, RecourseAnswer((), note)
            record[spec.name] = value
        decided = self.engine.decide(self.encoder.encode_records([record]), with_reasons=False)
        decision = DECISIONS[int(decided.decision_index[0])]
        return decision, self.search(record, decision=decision)

    def _none_note(self, decision: str, why: str | None) -> str:
        names = ", ".join(f.label for f in self.fields)
        goal = "approval" if decision == "review" else "approval or referral"
        limit = self.config.max_changes
        text = (
            f"No change to the fields an applicant can act on ({names}), up to {limit} at a time "
            f"and within their limits, reaches {goal}"
        )
        return f"{text}: {why}." if why else f"{text}."

    def _combinations(
        self, base: np.ndarray, edits: list[_Edits], targets: tuple[int, ...]
    ) -> list[tuple[float, int, float, tuple[tuple[int, int], ...]]]:
        """Candidates reaching a target decision: (cost, decision, probability, ((edits index, value index), ...))."""
        found: list[tuple[float, int, float, tuple[tuple[int, int], ...]]] = []
        winners: set[tuple[tuple[int, int], ...]] = set()
        sets = [((k, j),) for k, e in enumerate(edits) for j in range(len(e.values))]
        probabilities, decisions = self._score(base, edits, sets)
        reduced: list[list[int]] = []
        start = 0
        for e in edits:
            p = probabilities[start : start + len(e.values)]
            d = decisions[start : start + len(e.values)]
            start += len(e.values)
            reduced.append(_frontier(p, d, targets, self.config.values_per_field))
        self._collect(sets, probabilities, decisions, targets, edits, found, winners)
        if self.config.max_changes < 2 or len(edits) < 2:
            return found
        pairs = [
            ((a, i), (b, j))
            for a, b in itertools.combinations(range(len(edits)), 2)
            for i in reduced[a]
            for j in reduced[b]
        ]
        if not pairs:
            return found
        probabilities, decisions = self._score(base, edits, pairs)
        self._collect(pairs, probabilities, decisions, targets, edits, found, winners)
        if self.config.max_changes < 3 or len(edits) < 3:
            return found
        losing = [i for i in np.argsort(probabilities, kind="stable") if int(decisions[i]) not in targets][:_BEAM]
        triples = {
            tuple(sorted((*pairs[i], (c, j))))
            for i in losing
            for c in range(len(edits))
            if c not in (pairs[i][0][0], pairs[i][1][0])
            for j in reduced[c]
        }
        triples_list = [t for t in sorted(triples) if not any(s in winners for s in itertools.combinations(t, 2))]
        if triples_list:
            probabilities, decisions = self._score(base, edits, triples_list)
            self._collect(triples_list, probabilities, decisions, targets, edits, found, winners)
        return found

    def _collect(
        self,
        sets: Sequence[tuple[tuple[int, int], ...]],
        probabilities: np.ndarray,
        decisions: np.ndarray,
        targets: tuple[int, ...],
        edits: list[_Edits],
        found: list[tuple[float, int, float, tuple[tuple[int, int], ...]]],
        winners: set[tuple[tuple[int, int], ...]],
    ) -> None:
        for row in np.flatnonzero(np.isin(decisions, targets)).tolist():
            chosen = sets[row]
            if len(chosen) > 1 and any(
                s in winners for r in range(1, len(chosen)) for s in itertools.combinations(chosen, r)
            ):
                continue  # contains a smaller change that already succeeds: not minimal
            winners.add(chosen)
            cost = float(sum(edits[k].costs[j] for k, j in chosen))
            found.append((cost, int(decisions[row]), float(probabilities[row]), chosen))

    def _score(
        self, base: np.ndarray, edits: list[_Edits], sets: Sequence[tuple[tuple[int, int], ...]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every candidate of ``sets`` as one matrix, scored and decided by the engine."""
        matrix = np.repeat(base, len(sets), axis=0)
        for position in range(max(len(s) for s in sets)):
            by_field: dict[int, tuple[list[int], list[int]]] = {}
            for row, chosen in enumerate(sets):
                if position < len(chosen):
                    k, j = chosen[position]
                    rows, values = by_field.setdefault(k, ([], []))
                    rows.append(row)
                    values.append(j)
            for k, (rows, values) in by_field.items():
                columns = self._columns[edits[k].field]
                matrix[np.ix_(rows, columns)] = edits[k].slices[values]
        decided = self.engine.decide(matrix, with_reasons=False)
        return decided.probability, decided.decision_index

    def _verified(
        self,
        record: Mapping[str, Any],
        edits: list[_Edits],
        found: list[tuple[float, int, float, tuple[tuple[int, int], ...]]],
    ) -> list[Alternative]:
        """The best alternatives (the best decision reached first, then the lowest cost, one per set of
        changed fields), each scored again alone through the decision path; any that misses is dropped."""
        if not found:
            return []
        best = min(d for _, d, _, _ in found)
        ranked = sorted((f for f in found if f[1] == best), key=lambda f: (f[0], f[2]))
        chosen: list[Alternative] = []
        seen: set[frozenset[str]] = set()
        for cost, _, _, sets in ranked:
            changes = tuple(self._change(edits[k], j, record) for k, j in sets)
            key = frozenset(c.field for c in changes)
            if key in seen:
                continue
            changed = {**record, **{c.field: c.to_value for c in changes}}
            decided = self.engine.decide(self.encoder.encode_records([changed]), with_reasons=False)
            decision = int(decided.decision_index[0])
            if decision != best:
                continue
            seen.add(key)
            chosen.append(Alternative(changes, DECISIONS[decision], float(decided.probability[0]), cost))
            if len(chosen) == self.config.max_alternatives:
                break
        return chosen

    # ------------------------------------------------------------ candidates

    def _edits(self, index: int, record: Mapping[str, Any]) -> _Edits | None:
        """A field's candidate values for this applicant, nearest first, or None if it cannot move."""
        spec = self.fields[index]
        value = record.get(spec.name)
        if value is None:
            return None
        weight = self.config.cost_of(spec.name)
        columns = self._columns[index]
        if spec.type == "categorical":
            order = list(spec.recourse.order or ())  # type: ignore[union-attr]
            if value not in order:
                return None
            at = order.index(value)
            steps = order[at + 1 :] if spec.recourse.sign > 0 else order[:at][::-1]  # type: ignore[union-attr]
            if not steps:
                return None
            codes = list(spec.codes)
            slices = np.zeros((len(steps), len(columns)), dtype=np.float32)
            slices[np.arange(len(steps)), [codes.index(c) for c in steps]] = 1.0
            costs = weight * np.arange(1, len(steps) + 1) / (len(order) - 1)
            return _Edits(index, steps, costs, slices)
        values = self._numeric_candidates(spec, int(columns[0]), float(value))
        if not values:
            return None
        if spec.value_labels:
            span = (spec.max - spec.min) or 1  # type: ignore[operator]
            costs = weight * np.abs(np.asarray(values, dtype=np.float64) - float(value)) / span
        else:
            costs = weight * np.abs(np.asarray(values, dtype=np.float64) - float(value)) / max(abs(float(value)), 1.0)
        slices = np.asarray(values, dtype=np.float32)[:, None]
        return _Edits(index, values, costs, slices)

    def _numeric_candidates(self, spec: FieldSpec, column: int, value: float) -> list[Any]:
        """Values just past each split threshold in the allowed direction, within bounds, nearest first."""
        low, high = spec.recourse_bounds()
        sign = spec.recourse.sign  # type: ignore[union-attr]
        integer = spec.type == "integer"
        if self._splits is not None:
            thresholds = [float(t) for t in self._splits.get(column, np.empty(0))]
        else:  # a linear model: its output moves everywhere; try the training profile's bin edges
            thresholds = [float(e) for e in self._edges.get(spec.name, [])] + [low, high]
        candidates: set[float] = set()
        ordered = sorted(thresholds)
        for i, t in enumerate(ordered):
            if sign < 0 and t <= value:
                # left of the split (x < t): the largest allowed value below t, rounded within its region
                top = math.ceil(t) - 1 if integer else float(np.nextafter(np.float32(t), np.float32(-np.inf)))
                floor = ordered[i - 1] if i > 0 else -math.inf
                if self._splits is None:
                    top, floor = t, -math.inf
                region_low = max(math.ceil(floor) if integer and floor > -math.inf else floor, low)
                if top < region_low or top >= value:
                    continue
                candidates.add(_round_down(top, region_low, value) if integer else top)
            elif sign > 0 and t > value:
                bottom = math.ceil(t) if integer else t
                ceiling = ordered[i + 1] if i + 1 < len(ordered) else math.inf
                if self._splits is None:
                    bottom, ceiling = t, math.inf
                region_high = min((math.ceil(ceiling) - 1) if integer and ceiling < math.inf else ceiling, high)
                if bottom > region_high or bottom <= value:
                    continue
                candidates.add(_round_up(bottom, region_high, value) if integer else bottom)
        if self._splits is None:
            candidates = {float(round(c)) if integer else c for c in candidates if low <= c <= high and c != value}
        chosen = sorted(candidates, key=lambda c: abs(c - value))
        return [int(c) for c in chosen] if integer else chosen

    def _change(self, edits: _Edits, j: int, record: Mapping[str, Any]) -> Change:
        spec = self.fields[edits.field]
        before, after = record[spec.name], edits.values[j]
        return Change(spec.name, spec.label, before, after, _describe(spec, before), _describe(spec, after))


def _in_range(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return spec.min <= value <= spec.max  # type: ignore[operator]


def _describe(spec: FieldSpec, value: Any) -> str:
    """A value as a person reads it: a category's or a code's label, a number with thousands separators."""
    if spec.type == "categorical" or spec.value_labels:
        return spec.describe_value(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _round_down(top: float, region_low: float, value: float) -> float:
    """The roundest whole number in [region_low, top], rounding by at most a tenth of ``value``."""
    step = 10 ** max(int(math.log10(max(value, 1) / 10)), 0) if value >= 10 else 1
    while step > 1:
        rounded = math.floor(top / step) * step
        if rounded >= region_low:
            return float(rounded)
        step //= 10
    return float(top)


def _round_up(bottom: float, region_high: float, value: float) -> float:
    """The roundest whole number in [bottom, region_high], rounding by at most a tenth of ``value``."""
    step = 10 ** max(int(math.log10(max(value, 1) / 10)), 0) if value >= 10 else 1
    while step > 1:
        rounded = math.ceil(bottom / step) * step
        if rounded <= region_high:
            return float(rounded)
        step //= 10
    return float(bottom)


def _frontier(probabilities: np.ndarray, decisions: np.ndarray, targets: tuple[int, ...], limit: int) -> list[int]:
    """A field's values worth combining: those that do not succeed alone and lower the risk more than
    every nearer value (its values are nearest first); at most ``limit``, the strongest always kept."""
    keep: list[int] = []
    best = math.inf
    for i, p in enumerate(probabilities.tolist()):
        if int(decisions[i]) in targets:
            break  # from here on the field succeeds alone: a combination with it is not minimal
        if p < best - _TOLERANCE:
            keep.append(i)
            best = p
    if len(keep) > limit:
        picks = np.unique(np.linspace(0, len(keep) - 1, limit).round().astype(int))
        keep = [keep[i] for i in picks]
    return keep


def _split_values(model: Any) -> dict[int, np.ndarray] | None:
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
