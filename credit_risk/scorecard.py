"""A points scorecard as plain data: each characteristic's attributes (bins), their weight of evidence and points.

A scorecard is a table lookup. Each model input field is a characteristic whose
values fall into attributes (a numeric field's bins ``low <= x < high``, a
categorical field's groups of codes, and "not provided" for an optional field);
each attribute carries its weight of evidence WoE = ln(share of goods / share of
bads) and its points, ``-(coefficient * WoE + intercept / n) * Factor + Offset / n``
rounded to a whole number, under the ``scorecard`` scaling it was built with.
An applicant's score is the sum of their points, and the probability of default
is the one that score stands for: ``1 / (1 + exp((score - Offset) / Factor))``,
so the decision engine's score of that probability is the points' sum again.

Reasons are the points an applicant lost against the best attribute of each
characteristic (the usual US adverse-action method), in log-odds (points /
Factor) like every model's reasons. Fitting (optbinning's monotone optimal
binning and the regression) is training's: ``pipelines/scorecard_fit.py``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from credit_risk.schema import NOT_PROVIDED, FieldSpec

if TYPE_CHECKING:
    from credit_risk.scoring import Encoder

SCORECARD_FILE = "scorecard.json"
POINTS_TABLE_HEADER = ("characteristic", "field", "attribute", "points", "weight_of_evidence", "goods", "bads")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Attribute:
    """One bin of a characteristic: the values in it, its weight of evidence, its points, its training counts.

    Numeric: ``low <= x < high`` (None: unbounded). Categorical: ``codes``. ``missing``: the value not provided.
    """

    points: int
    woe: float
    goods: int
    bads: int
    low: float | None = None
    high: float | None = None
    codes: tuple[str, ...] = ()
    missing: bool = False

    def describe(self, spec: FieldSpec) -> str:
        """The attribute in the schema's words ("12 to 23", "Car (new); Car (used)", "not provided")."""
        if self.missing:
            return NOT_PROVIDED
        if self.codes:
            return "; ".join(spec.describe_value(code) for code in self.codes)
        if spec.type == "integer":
            assert spec.min is not None and spec.max is not None
            first = int(spec.min) if self.low is None else max(math.ceil(self.low), int(spec.min))
            last = int(spec.max) if self.high is None else min(math.ceil(self.high) - 1, int(spec.max))
            if spec.value_labels:
                labels = [spec.describe_value(v) for v in range(first, last + 1)]
                return "; ".join(labels) if labels else "none"
            if first >= last:
                return str(first) if first == last else "none"
            if self.low is None:
                return f"up to {last}"
            if self.high is None:
                return f"{first} or more"
            return f"{first} to {last}"
        if self.low is None and self.high is None:
            return "any"
        if self.low is None:
            return f"under {_plain(self.high)}"
        if self.high is None:
            return f"{_plain(self.low)} or more"
        return f"{_plain(self.low)} to under {_plain(self.high)}"


@dataclass(frozen=True)
class Characteristic:
    """A field's attributes, in order (numeric: increasing values; the missing one last) and its coefficient."""

    field: str
    coefficient: float
    attributes: tuple[Attribute, ...]

    @property
    def present(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if not a.missing)

    @property
    def missing(self) -> Attribute | None:
        return next((a for a in self.attributes if a.missing), None)

    @property
    def best_points(self) -> int:
        return max(a.points for a in self.attributes)


class Scorecard:
    """A fitted scorecard bound to the encoder's layout: points, score, probability and reasons of encoded rows."""

    def __init__(
        self,
        characteristics: tuple[Characteristic, ...],
        *,
        intercept: float,
        factor: float,
        offset: float,
        encoder: Encoder,
    ) -> None:
        self.characteristics = characteristics
        self.intercept = intercept
        self.factor = factor
        self.offset = offset
        self.fields = encoder.fields
        names = [c.field for c in characteristics]
        if names != [f.name for f in encoder.fields]:
            raise ValueError("the scorecard's characteristics do not match the feature schema's model inputs")
        self._build_lookup(encoder)

    # ------------------------------------------------------------ the lookup

    def _build_lookup(self, encoder: Encoder) -> None:
        """Arrays that score a whole matrix in a few numpy operations, whatever the number of fields."""
        fields = encoder.fields
        numeric = [i for i, f in enumerate(fields) if f.is_numeric]
        categorical = [i for i, f in enumerate(fields) if not f.is_numeric]
        first_column = {int(f): int(np.flatnonzero(encoder.field_of_column == f)[0]) for f in range(len(fields))}
        widest = max((len(self.characteristics[i].present) for i in numeric), default=1)
        self._numeric = np.asarray(numeric, dtype=np.intp)
        self._numeric_columns = np.asarray([first_column[i] for i in numeric], dtype=np.intp)
        self._splits = np.full((len(numeric), max(widest - 1, 1)), np.inf)
        self._numeric_points = np.zeros((len(numeric), widest))
        self._numeric_missing = np.zeros(len(numeric))
        for row, i in enumerate(numeric):
            present = self.characteristics[i].present
            highs = [a.high for a in present[:-1]]
            self._splits[row, : len(highs)] = highs
            self._numeric_points[row, : len(present)] = [a.points for a in present]
            self._numeric_points[row, len(present) :] = present[-1].points  # never reached: +inf splits
            missing = self.characteristics[i].missing
            self._numeric_missing[row] = np.nan if missing is None else missing.points
        self._categorical = np.asarray(categorical, dtype=np.intp)
        columns = np.flatnonzero(np.isin(encoder.field_of_column, categorical))
        self._categorical_columns = columns
        self._code_points = np.zeros((len(columns), len(categorical)))
        self._code_member = np.zeros((len(columns), len(categorical)))
        self._categorical_missing = np.zeros(len(categorical))
        for slot, i in enumerate(categorical):
            spec, characteristic = fields[i], self.characteristics[i]
            points_of = {code: a.points for a in characteristic.present for code in a.codes}
            if set(points_of) != set(spec.codes):
                raise ValueError(f"{spec.name}: the scorecard's attributes must cover every category once")
            for k, column in enumerate(np.flatnonzero(encoder.field_of_column == i)):
                position = int(np.flatnonzero(columns == column)[0])
                self._code_points[position, slot] = points_of[spec.codes[k]]
                self._code_member[position, slot] = 1.0
            missing = characteristic.missing
            self._categorical_missing[slot] = np.nan if missing is None else missing.points
        self._best = np.asarray([c.best_points for c in self.characteristics], dtype=np.float64)

    def points(self, matrix: np.ndarray) -> np.ndarray:
        """(rows, fields) float64: each applicant's points per characteristic (NaN: a required value missing)."""
        matrix = np.asarray(matrix)
        out = np.empty((len(matrix), len(self.characteristics)))
        if len(self._numeric):
            values = matrix[:, self._numeric_columns].astype(np.float64)
            bins = (values[:, :, None] >= self._splits[None, :, :]).sum(axis=2)
            looked_up = self._numeric_points[np.arange(len(self._numeric))[None, :], bins]
            out[:, self._numeric] = np.where(np.isnan(values), self._numeric_missing, looked_up)
        if len(self._categorical):
            block = matrix[:, self._categorical_columns].astype(np.float64)
            present = block @ self._code_member
            out[:, self._categorical] = np.where(present > 0, block @ self._code_points, self._categorical_missing)
        return out

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """The sum of each applicant's points."""
        return self.points(matrix).sum(axis=1)

    def probability_from_score(self, score: np.ndarray) -> np.ndarray:
        """P(default) a score stands for under the scaling the scorecard was built with."""
        return 1.0 / (1.0 + np.exp((np.asarray(score, dtype=np.float64) - self.offset) / self.factor))

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return self.probability_from_score(self.score(matrix))

    def field_contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per row and field, the points lost against the characteristic's best attribute, in log-odds."""
        return (self._best - self.points(matrix)) / self.factor

    def split_values(self) -> dict[int, np.ndarray]:
        """Per numeric field's encoded column, the bin edges (``x < edge`` falls below): where its points change."""
        out = {}
        for row, column in enumerate(self._numeric_columns.tolist()):
            edges = self._splits[row]
            out[column] = edges[np.isfinite(edges)].astype(np.float32)
        return out

    # ------------------------------------------------------------ plain data

    def to_json(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "factor": self.factor,
            "offset": self.offset,
            "characteristics": [
                {
                    "field": c.field,
                    "coefficient": c.coefficient,
                    "attributes": [
                        {k: (list(v) if k == "codes" else v) for k, v in asdict(a).items()} for a in c.attributes
                    ],
                }
                for c in self.characteristics
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], encoder: Encoder) -> Scorecard:
        characteristics = tuple(
            Characteristic(
                field=str(c["field"]),
                coefficient=float(c["coefficient"]),
                attributes=tuple(
                    Attribute(
                        points=int(a["points"]),
                        woe=float(a["woe"]),
                        goods=int(a["goods"]),
                        bads=int(a["bads"]),
                        low=None if a.get("low") is None else float(a["low"]),
                        high=None if a.get("high") is None else float(a["high"]),
                        codes=tuple(str(code) for code in a.get("codes", ())),
                        missing=bool(a.get("missing", False)),
                    )
                    for a in c["attributes"]
                ),
            )
            for c in data["characteristics"]
        )
        return cls(
            characteristics,
            intercept=float(data["intercept"]),
            factor=float(data["factor"]),
            offset=float(data["offset"]),
            encoder=encoder,
        )

    # ------------------------------------------------------------ for people and databases

    def points_table(self) -> list[tuple[str, str, str, int, float, int, int]]:
        """One row per attribute, in the schema's words (the CSV artifact and the validation report's table)."""
        rows = []
        for spec, characteristic in zip(self.fields, self.characteristics, strict=True):
            for a in characteristic.attributes:
                rows.append((spec.label, spec.name, a.describe(spec), a.points, round(a.woe, 4), a.goods, a.bads))
        return rows

    def points_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(POINTS_TABLE_HEADER)
        writer.writerows(self.points_table())
        return buffer.getvalue()

    def to_sql(self, table: str = "applicants") -> str:
        """A query scoring every row of ``table`` (columns named as the schema's fields, values as its codes):
        one ``CASE`` per characteristic, ``points_<field>``, and ``score``, their sum. A required value that is
        missing, or a code the schema does not know, gives NULL points (and a NULL score), never a default.
        Validate rows against the schema first, as every other path does."""
        if not _IDENTIFIER.match(table):
            raise ValueError(f"table: {table!r} is not a plain SQL identifier")
        cases = [
            f"    {self._case(spec, c)} AS points_{spec.name}"
            for spec, c in zip(self.fields, self.characteristics, strict=True)
        ]
        total = " + ".join(f"points_{spec.name}" for spec in self.fields)
        return (
            "-- Points scorecard: score = the sum of the points; P(default) = 1 / (1 + exp((score - "
            f"{self.offset!r}) / {self.factor!r})).\n"
            f"SELECT scored.*, {total} AS score\nFROM (\n  SELECT {table}.*,\n"
            + ",\n".join(cases)
            + f"\n  FROM {table}\n) AS scored;\n"
        )

    @staticmethod
    def _case(spec: FieldSpec, characteristic: Characteristic) -> str:
        name = spec.name
        parts = ["CASE"]
        missing = characteristic.missing
        if missing is not None:
            parts.append(f"WHEN {name} IS NULL THEN {missing.points}")
        present = characteristic.present
        if spec.is_numeric:
            for a in present[:-1]:
                parts.append(f"WHEN {name} < {a.high!r} THEN {a.points}")
            parts.append(f"WHEN {name} IS NOT NULL THEN {present[-1].points}")
        else:
            for a in present:
                codes = ", ".join(f"'{code}'" for code in a.codes)
                parts.append(f"WHEN {name} IN ({codes}) THEN {a.points}")
        return " ".join([*parts, "END"])


def _plain(value: float | None) -> str:
    assert value is not None
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
