"""Validation and encoding of a record batch, with the schema's rule table, column by column."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from credit_risk.rules import ArrowCheck, FieldRule
from credit_risk.schema import FieldSpec
from credit_risk.scoring import ScoringModel


@dataclass
class EncodedChunk:
    matrix: np.ndarray  # float32, one row per valid input row (valid until the next chunk is encoded)
    valid: np.ndarray | None  # positions of the valid rows in the chunk; None when all are valid
    rejects: list[tuple[int, str, str, str]]  # (position, first field, its rule, every "field: rule")
    # per model input, every row's value as the rule table read it: a category's index in its codes
    # (-1: missing) or a number (NaN: missing); only :meth:`records` picks the valid rows (no cost otherwise)
    parsed: list[tuple[FieldSpec, np.ndarray]] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The valid rows as validated records, as the service parses an applicant: a category's code, a
        whole number as an int, None when missing (a CSV's text "60" is 60, as in the matrix)."""
        names = [spec.name for spec, _ in self.parsed]
        pick = slice(None) if self.valid is None else self.valid
        columns = [_python_values(spec, values[pick]) for spec, values in self.parsed]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _python_values(spec: FieldSpec, values: np.ndarray) -> list[Any]:
    if spec.type == "categorical":
        codes = (*spec.codes, None)  # index -1 (missing) is the last: None
        return [codes[i] for i in values.tolist()]
    cast = int if spec.type == "integer" else float
    return [None if math.isnan(v) else cast(v) for v in values.astype(np.float64).tolist()]


@dataclass
class _Check:
    """One field's verdict on a chunk: which rows break which rule."""

    spec: FieldSpec
    bad: np.ndarray
    rule: np.ndarray  # index into rules, per row
    rules: list[str]


class ChunkEncoder:
    """Validates a record batch against the model's inputs and encodes it, column by column.

    The rules are the schema's rule table (:class:`credit_risk.rules.FieldRule`),
    as for training data, the API and Spark. The one-hot and numeric columns
    are written into a reused float32 buffer laid out exactly as
    :class:`credit_risk.scoring.Encoder` lays it out (a missing number is NaN,
    a missing category sets no column).
    """

    def __init__(self, model: ScoringModel) -> None:
        encoder = model.encoder
        self.width = encoder.width
        self.fields = list(encoder.fields)
        position = {name: i for i, name in enumerate(encoder.columns)}
        self._categoricals = [FieldRule(s) for s in self.fields if s.type == "categorical"]
        self._numbers = [FieldRule(s) for s in self.fields if s.is_numeric]
        # per categorical: the encoded column of each code, in the order of its codes, then -1 for missing
        self._code_columns = [
            np.asarray([position[f"{r.name}={c}"] for c in r.codes] + [-1], dtype=np.intp) for r in self._categoricals
        ]
        self._number_columns = np.asarray([position[r.name] for r in self._numbers], dtype=np.intp)
        self._buffer = np.zeros((0, self.width), dtype=np.float32)
        self._row_offsets = np.zeros(0, dtype=np.intp)

    def encode(self, batch: pa.RecordBatch) -> EncodedChunk:
        hot: list[np.ndarray] = []  # per categorical: each row's encoded column (-1: missing)
        numbers: list[np.ndarray] = []  # per numeric field: each row's value (NaN: missing)
        parsed: list[tuple[FieldSpec, np.ndarray]] = []
        checks: list[_Check] = []
        for rule, columns in zip(self._categoricals, self._code_columns, strict=True):
            verdict = rule.check_arrow(batch.column(rule.name))
            hot.append(columns[verdict.values])
            parsed.append((rule.spec, verdict.values))
            checks += self._check(rule, verdict)
        for rule in self._numbers:
            verdict = rule.check_arrow(batch.column(rule.name))
            numbers.append(verdict.values)
            parsed.append((rule.spec, verdict.values))
            checks += self._check(rule, verdict)
        valid = None
        if checks:
            valid = np.flatnonzero(~np.logical_or.reduce([c.bad for c in checks]))
            hot = [column[valid] for column in hot]
            numbers = [values[valid] for values in numbers]
        rows = batch.num_rows if valid is None else len(valid)
        matrix = self._matrix(rows)
        for column, values in zip(self._number_columns, numbers, strict=True):
            matrix[:, column] = values
        # one-hot cells by flat position (row offset + column): one scatter per field
        flat, offsets = matrix.reshape(-1), self._row_offsets[:rows]
        for columns in hot:
            if columns.size and columns.min() < 0:
                present = columns >= 0
                flat[offsets[present] + columns[present]] = 1.0
            else:
                flat[offsets + columns] = 1.0
        return EncodedChunk(matrix, valid, self._reject_rows(checks) if checks else [], parsed)

    @staticmethod
    def _check(rule: FieldRule, verdict: ArrowCheck) -> list[_Check]:
        if verdict.bad is None or verdict.rule is None:
            return []
        return [_Check(rule.spec, verdict.bad, verdict.rule, [r.message for r in rule.rules])]

    def _matrix(self, rows: int) -> np.ndarray:
        """A zeroed (rows, width) view of a reused buffer: no fresh pages to fault in per chunk."""
        if len(self._buffer) < rows:
            self._buffer = np.zeros((rows, self.width), dtype=np.float32)
            self._row_offsets = np.arange(rows, dtype=np.intp) * self.width
        matrix = self._buffer[:rows]
        matrix.fill(0.0)
        return matrix

    def _reject_rows(self, checks: list[_Check]) -> list[tuple[int, str, str, str]]:
        bad_any = np.logical_or.reduce([c.bad for c in checks])
        order = {spec.name: i for i, spec in enumerate(self.fields)}
        checks = sorted(checks, key=lambda c: order[c.spec.name])  # report fields in schema order
        rejects = []
        for position in np.flatnonzero(bad_any):  # rare rows: a Python loop is fine here
            broken = [(c.spec.name, c.rules[c.rule[position]]) for c in checks if c.bad[position]]
            reason = "; ".join(f"{name}: {text}" for name, text in broken)
            rejects.append((int(position), broken[0][0], broken[0][1], reason))
        return rejects
