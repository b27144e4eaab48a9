"""The recourse search: single changes, then pairs, then triples, each alternative verified (see the package)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from credit_risk.config import RecourseConfig
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.recourse.answers import Alternative, Change, RecourseAnswer
from credit_risk.recourse.values import (
    describe,
    frontier,
    in_range,
    round_down,
    round_up,
    split_values,
)
from credit_risk.schema import FieldSpec

_BEAM = 8  # pairs extended into triples


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
        self._splits = split_values(model)
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
                usable = value in spec.codes if spec.type == "categorical" else in_range(spec, value)
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
            reduced.append(frontier(p, d, targets, self.config.values_per_field))
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
                candidates.add(round_down(top, region_low, value) if integer else top)
            elif sign > 0 and t > value:
                bottom = math.ceil(t) if integer else t
                ceiling = ordered[i + 1] if i + 1 < len(ordered) else math.inf
                if self._splits is None:
                    bottom, ceiling = t, math.inf
                region_high = min((math.ceil(ceiling) - 1) if integer and ceiling < math.inf else ceiling, high)
                if bottom > region_high or bottom <= value:
                    continue
                candidates.add(round_up(bottom, region_high, value) if integer else bottom)
        if self._splits is None:
            candidates = {float(round(c)) if integer else c for c in candidates if low <= c <= high and c != value}
        chosen = sorted(candidates, key=lambda c: abs(c - value))
        return [int(c) for c in chosen] if integer else chosen

    def _change(self, edits: _Edits, j: int, record: Mapping[str, Any]) -> Change:
        spec = self.fields[edits.field]
        before, after = record[spec.name], edits.values[j]
        return Change(spec.name, spec.label, before, after, describe(spec, before), describe(spec, after))
