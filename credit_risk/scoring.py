"""The registered model's format and its fast scoring path.

A model version is a folder of plain data, never a pickle:

- ``model.json``: format version, kind (``xgboost``, ``logistic`` or
  ``scorecard``), the encoded column layout, and for a logistic model its
  coefficients and the values it imputes for missing numbers (learned on the
  training rows);
- ``booster.ubj``: an XGBoost booster in XGBoost's own format;
- ``scorecard.json``: a points scorecard's characteristics, attributes (bins),
  weights of evidence and points (:mod:`credit_risk.scorecard`);
- ``feature_schema.json``: the feature schema the model was trained on;
- ``reference_profile.json``: training bins and shares for the drift monitor.

The encoder needs no fitted state: the schema's category order fixes the
one-hot layout. A missing number is NaN (XGBoost routes it down each split's
learned default branch); a missing category sets none of its one-hot columns.
Scoring encodes validated records straight into a float32 matrix; there is no
per-request DataFrame and no scikit-learn on the hot path.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from credit_risk.schema import FeatureSchema
from credit_risk.scorecard import SCORECARD_FILE, Scorecard

if TYPE_CHECKING:  # imported where a booster is loaded or explained: XGBoost brings scikit-learn and SciPy
    import xgboost as xgb

# set by ``python -m serving.app`` for itself and its workers: see import_xgboost
BOOSTERS_ONLY_VARIABLE = "CREDIT_RISK_XGBOOST_BOOSTERS_ONLY"


def import_xgboost() -> ModuleType:
    """XGBoost, imported without its scikit-learn estimators in a process that only loads and runs
    boosters: the service, which sets ``BOOSTERS_ONLY_VARIABLE`` to 1 (docs/api.md).

    XGBoost imports scikit-learn, and SciPy's statistics with it, for its estimator classes: 1.2 s of
    CPU at every start of a process that never fits one. There, scikit-learn is hidden while XGBoost
    imports (a ``None`` in ``sys.modules`` is an ImportError to the importer, which XGBoost takes to
    mean "not installed"); boosters load and predict the same. Where scikit-learn is imported already
    or the variable is not set (training, the tests' own processes), XGBoost imports as usual.
    """
    if "xgboost" not in sys.modules and "sklearn" not in sys.modules and os.environ.get(BOOSTERS_ONLY_VARIABLE) == "1":
        sys.modules["sklearn"] = None  # type: ignore[assignment]
        try:
            import xgboost
        finally:
            del sys.modules["sklearn"]
    import xgboost

    return xgboost


# 2: optional fields (NaN in the encoding), the logistic model's imputation; 3: the scorecard kind
FORMAT_VERSION = 3
_READABLE_FORMATS = (1, 2, 3)
MODEL_FILE = "model.json"
BOOSTER_FILE = "booster.ubj"
SCHEMA_FILE = "feature_schema.json"
PROFILE_FILE = "reference_profile.json"


class Encoder:
    """One-hot categoricals and raw numbers, laid out by the schema's model inputs."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.fields = schema.inputs
        self.columns: list[str] = []
        field_of_column: list[int] = []
        self._slots: list[tuple[str, int, dict[str, int] | None]] = []
        for field_index, spec in enumerate(self.fields):
            if spec.type == "categorical":
                lookup = {}
                for code in spec.codes:
                    lookup[code] = len(self.columns)
                    self.columns.append(f"{spec.name}={code}")
                    field_of_column.append(field_index)
                self._slots.append((spec.name, -1, lookup))
            else:
                self._slots.append((spec.name, len(self.columns), None))
                self.columns.append(spec.name)
                field_of_column.append(field_index)
        self.field_of_column = np.asarray(field_of_column, dtype=np.intp)
        # columns x fields: sums per-column contributions back to the applicant's fields
        self.column_to_field = np.zeros((len(self.columns), len(self.fields)), dtype=np.float64)
        self.column_to_field[np.arange(len(self.columns)), self.field_of_column] = 1.0

    @property
    def width(self) -> int:
        return len(self.columns)

    def monotone_constraints(self) -> tuple[int, ...]:
        """Per encoded column: +1 / -1 where the schema constrains the field's effect on risk."""
        return tuple(
            int(self.fields[i].monotone_sign) if self.fields[i].is_numeric else 0 for i in self.field_of_column
        )

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode already-validated records (field -> code or number; None = missing) into float32 rows."""
        matrix = np.zeros((len(records), self.width), dtype=np.float32)
        for row, record in enumerate(records):
            values = matrix[row]
            for name, column, lookup in self._slots:
                value = record[name]
                if value is None:
                    if lookup is None:
                        values[column] = np.nan
                elif lookup is None:
                    values[column] = value
                else:
                    values[lookup[value]] = 1.0
        return matrix

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a validated frame (codes, not source strings; None or NaN = missing), vectorised."""
        matrix = np.zeros((len(frame), self.width), dtype=np.float32)
        rows = np.arange(len(frame))
        for name, column, lookup in self._slots:
            if lookup is None:
                matrix[:, column] = pd.to_numeric(frame[name]).to_numpy(dtype=np.float32, na_value=np.nan)
            else:
                present = frame[name].notna().to_numpy()
                codes = frame[name][present].map(lookup)
                if codes.isna().any():
                    raise ValueError(f"column {name!r}: unknown category")
                matrix[rows[present], codes.to_numpy(dtype=np.intp)] = 1.0
        return matrix


@dataclass(frozen=True)
class LinearParams:
    coef: np.ndarray  # per encoded column, on the raw (unscaled) encoding
    intercept: float
    baseline: np.ndarray  # mean encoded row of the training data (after imputation): the reasons' reference
    impute: np.ndarray | None = None  # per encoded column, the value a missing one takes (training median)

    def fill(self, matrix: np.ndarray) -> np.ndarray:
        """The encoded rows as float64, missing numbers replaced by the learned values."""
        return impute_missing(matrix, self.impute)


def impute_missing(matrix: np.ndarray, impute: np.ndarray | None) -> np.ndarray:
    """``matrix`` as float64 with each NaN replaced by its column's value in ``impute``."""
    values = matrix.astype(np.float64)
    if impute is not None:
        missing = np.isnan(values)
        if missing.any():
            values[missing] = np.broadcast_to(impute, values.shape)[missing]
    return values


class ScoringModel:
    """A loaded model version: probability of default and per-field contributions."""

    def __init__(
        self,
        *,
        schema: FeatureSchema,
        kind: str,
        booster: xgb.Booster | None = None,
        linear: LinearParams | None = None,
        scorecard: Scorecard | None = None,
        profile: dict[str, Any] | None = None,
        threads: int = 1,
    ) -> None:
        self.schema = schema
        self.encoder = Encoder(schema)
        self.kind = kind
        self.booster = booster
        self.linear = linear
        self.scorecard = scorecard
        self.profile = profile or {}
        self.threads = threads
        if kind == "xgboost":
            if booster is None:
                raise ValueError("an xgboost model needs a booster")
            booster.set_param({"nthread": threads})
        elif kind == "logistic":
            if linear is None:
                raise ValueError("a logistic model needs its coefficients")
        elif kind == "scorecard":
            if scorecard is None:
                raise ValueError("a scorecard model needs its points table")
        else:
            raise ValueError(f"unknown model kind {kind!r}")

    # ------------------------------------------------------------ scoring

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of default for each encoded row."""
        if self.booster is not None:
            return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)
        if self.scorecard is not None:
            return self.scorecard.predict_proba(matrix)
        assert self.linear is not None
        margin = self.linear.fill(matrix) @ self.linear.coef + self.linear.intercept
        return 1.0 / (1.0 + np.exp(-margin))

    def field_contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per row and model input field, its contribution to the log-odds of default.

        XGBoost: TreeSHAP (``pred_contribs``) summed from encoded columns back
        to fields. Logistic: coefficient times the distance from the training
        mean. Scorecard: the points lost against each characteristic's best
        attribute, over Factor. Positive values raised the risk.
        """
        if self.scorecard is not None:
            return self.scorecard.field_contributions(matrix)
        if self.booster is not None:
            import xgboost as xgb

            # nthread: a DMatrix otherwise builds with every core's OpenMP threads, which cost
            # milliseconds per small request (tens of ms when the cores are busy)
            contribs = self.booster.predict(xgb.DMatrix(matrix, nthread=self.threads), pred_contribs=True)[:, :-1]
        else:
            assert self.linear is not None
            contribs = (self.linear.fill(matrix) - self.linear.baseline) * self.linear.coef
        return contribs @ self.encoder.column_to_field

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Validate a frame of applicants against the schema, then score it."""
        self.schema.check_frame(frame, fields=self.schema.inputs)
        return self.predict_proba(self.encoder.encode_frame(frame))

    # ------------------------------------------------------------ the format

    def save(self, directory: Path) -> None:
        """Write the model as plain data files (no pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "columns": self.encoder.columns,
            "schema_version": self.schema.version,
        }
        if self.booster is not None:
            self.booster.save_model(directory / BOOSTER_FILE)
        elif self.scorecard is not None:
            (directory / SCORECARD_FILE).write_text(json.dumps(self.scorecard.to_json(), indent=2))
        else:
            assert self.linear is not None
            meta["linear"] = {
                "coef": self.linear.coef.tolist(),
                "intercept": self.linear.intercept,
                "baseline": self.linear.baseline.tolist(),
                "impute": None if self.linear.impute is None else self.linear.impute.tolist(),
            }
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2))
        (directory / SCHEMA_FILE).write_text(self.schema.to_json())
        (directory / PROFILE_FILE).write_text(json.dumps(self.profile, indent=2))

    @classmethod
    def load(cls, directory: Path, *, threads: int = 1) -> ScoringModel:
        """Read a model folder written by :meth:`save`, checking its layout."""
        directory = Path(directory)
        meta = json.loads((directory / MODEL_FILE).read_text())
        if meta.get("format_version") not in _READABLE_FORMATS:
            raise ValueError(f"unsupported model format {meta.get('format_version')!r}")
        schema = FeatureSchema.read(directory / SCHEMA_FILE)
        profile_path = directory / PROFILE_FILE
        profile = json.loads(profile_path.read_text()) if profile_path.exists() else {}
        booster = linear = scorecard = None
        if meta["kind"] == "scorecard":
            scorecard = Scorecard.from_json(json.loads((directory / SCORECARD_FILE).read_text()), Encoder(schema))
        elif meta["kind"] == "xgboost":
            booster = import_xgboost().Booster()
            booster.load_model(directory / BOOSTER_FILE)
        elif meta["kind"] == "logistic":
            params = meta["linear"]
            linear = LinearParams(
                coef=np.asarray(params["coef"], dtype=np.float64),
                intercept=float(params["intercept"]),
                baseline=np.asarray(params["baseline"], dtype=np.float64),
                impute=None if params.get("impute") is None else np.asarray(params["impute"], dtype=np.float64),
            )
        model = cls(
            schema=schema,
            kind=meta["kind"],
            booster=booster,
            linear=linear,
            scorecard=scorecard,
            profile=profile,
            threads=threads,
        )
        if model.encoder.columns != meta["columns"]:
            raise ValueError("the model's column layout does not match its feature schema")
        return model
