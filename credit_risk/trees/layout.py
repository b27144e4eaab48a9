"""A small compiled tree runtime for the hot path: the booster's trees as numpy arrays.

``Booster.inplace_predict`` costs hundreds of microseconds per call whatever
the model size (it re-reads the cgroup CPU quota and sets up its thread pool
on every call). The served models are shallow (depth 2 to 4, a few hundred
trees), so the same trees laid out as complete binary trees in arrays are
walked level by level for all trees at once in a few numpy operations.

The layout is checked, never trusted: :meth:`TreeEnsemble.verified` compares
it with XGBoost on generated applicants and refuses it (the service then
uses XGBoost itself) if any probability differs by more than ``tolerance``.
XGBoost's rule is kept exactly: go left when ``x < split`` (float32); a
missing value (NaN, an optional field not provided) goes down the split's
learned default branch. The check includes rows with missing values and draws
the others where the training applicants are (the reference profile's bins).

Reason codes need TreeSHAP: :mod:`credit_risk.trees.shap` computes it from
the same layout, verified against XGBoost's ``pred_contribs`` like the
probabilities; the service and batch scoring share it, so one applicant's
reasons are the same whichever path scored it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from credit_risk.scoring import ScoringModel
from credit_risk.trees.kernels import leaf_values_row
from credit_risk.trees.shap import FieldTables, PathTables

if TYPE_CHECKING:
    import xgboost as xgb

log = logging.getLogger(__name__)

MAX_DEPTH = 8  # deeper trees would make the complete layout too large: use XGBoost
MAX_SHAP_DEPTH = 4  # deeper trees: reason codes from XGBoost's pred_contribs
SMALL_BATCH = 32  # up to this many rows the arrays are faster than XGBoost (measured: 1 row 38 us vs 196 us)


class UnsupportedModelError(ValueError):
    """The booster is not a plain binary:logistic tree ensemble this runtime can lay out."""


class TreeEnsemble:
    """Complete binary trees in arrays: split feature and threshold per node, value per leaf."""

    def __init__(
        self,
        features: np.ndarray,
        thresholds: np.ndarray,
        leaves: np.ndarray,
        base_margin: float,
        shap: PathTables | None = None,
        default_right: np.ndarray | None = None,
    ) -> None:
        self.shap = shap
        self.fields: FieldTables | None = None  # per-field TreeSHAP tables, set once verified
        self._layout = (features, thresholds, default_right)
        self.trees, self.nodes = features.shape
        self.depth = int(np.log2(self.nodes + 1))
        self._features = features.ravel()
        self._thresholds = thresholds.ravel()
        self._leaves = leaves.ravel()
        # per node, where a missing value goes (XGBoost's learned default; padding nodes: left)
        self._default_right = (
            np.zeros(self._features.shape, dtype=bool) if default_right is None else default_right.ravel()
        )
        self._node_offset = np.arange(self.trees, dtype=np.intp) * self.nodes
        self._leaf_offset = np.arange(self.trees, dtype=np.intp) * (self.nodes + 1) - self.nodes
        self.base_margin = base_margin

    @classmethod
    def from_booster(cls, booster: xgb.Booster) -> TreeEnsemble:
        config = json.loads(booster.save_config())
        learner = config["learner"]
        if learner["objective"]["name"] != "binary:logistic":
            raise UnsupportedModelError(f"objective {learner['objective']['name']!r} is not binary:logistic")
        if learner["gradient_booster"]["name"] != "gbtree":
            raise UnsupportedModelError("only gbtree boosters are laid out")
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        dumps = [json.loads(tree) for tree in booster.get_dump(dump_format="json", with_stats=True)]
        depth = max(_depth(tree) for tree in dumps)
        if depth > MAX_DEPTH:
            raise UnsupportedModelError(f"trees of depth {depth} (over {MAX_DEPTH})")
        depth = max(depth, 1)
        nodes = 2**depth - 1
        features = np.zeros((len(dumps), nodes), dtype=np.intp)
        thresholds = np.full((len(dumps), nodes), np.inf, dtype=np.float32)  # x < inf: always left
        leaves = np.zeros((len(dumps), nodes + 1), dtype=np.float64)
        default_right = np.zeros((len(dumps), nodes), dtype=bool)
        names = {name: i for i, name in enumerate(booster.feature_names or [])}
        for t, tree in enumerate(dumps):
            _fill(tree, t, 0, 0, depth, features, thresholds, leaves, names, default_right)
        # the TreeSHAP table grows as leaves x 2**depth x depth: only for shallow trees
        shap = PathTables.build(dumps, depth, nodes, names, booster.num_features()) if depth <= MAX_SHAP_DEPTH else None
        base_margin = float(np.log(base_score / (1.0 - base_score)))
        return cls(features, thresholds, leaves, base_margin, shap, default_right)

    def split_values(self) -> dict[int, np.ndarray]:
        """Per encoded column, the distinct thresholds its splits use (sorted): the only values at
        which the model's output in that column can change (recourse searches on them)."""
        features, thresholds, _ = self._layout
        real = np.isfinite(thresholds)
        columns = features[real]
        values = thresholds[real]
        return {int(c): np.unique(values[columns == c]) for c in np.unique(columns)}

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        """Raw log-odds per row: every tree walked at once, one level at a time."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if len(matrix) == 1:  # the common case: one compiled walk, the leaves summed as the batch walk sums them
            leaves = leaf_values_row(
                matrix[0],
                self._features,
                self._thresholds,
                self._default_right,
                self._node_offset,
                self._leaf_offset,
                self._leaves,
                self.depth,
            )
            return np.asarray([leaves.sum() + self.base_margin])
        if np.isnan(matrix).any():
            return self._margin_with_missing(matrix)
        position = np.zeros((len(matrix), self.trees), dtype=np.intp)
        for _ in range(self.depth):
            node = self._node_offset + position
            values = np.take_along_axis(matrix, self._features[node], axis=1)
            position = 2 * position + 1 + (values >= self._thresholds[node])
        return self._leaves[self._leaf_offset + position].sum(axis=1) + self.base_margin

    def _margin_with_missing(self, matrix: np.ndarray) -> np.ndarray:
        """As :meth:`margin`, a missing value taking each node's default branch."""
        position = np.zeros((len(matrix), self.trees), dtype=np.intp)
        for _ in range(self.depth):
            node = self._node_offset + position
            values = np.take_along_axis(matrix, self._features[node], axis=1)
            right = np.where(np.isnan(values), self._default_right[node], values >= self._thresholds[node])
            position = 2 * position + 1 + right
        return self._leaves[self._leaf_offset + position].sum(axis=1) + self.base_margin

    def decisions(self, row: np.ndarray) -> np.ndarray:
        """Every node's direction for one row (True: right), all trees at once."""
        values = row[self._features]
        right = values >= self._thresholds
        missing = np.isnan(values)
        if missing.any():
            right = np.where(missing, self._default_right, right)
        return right

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.margin(matrix)))

    def column_contributions(self, row: np.ndarray) -> np.ndarray:
        """TreeSHAP per encoded column for one row (no bias column), as ``pred_contribs`` gives."""
        assert self.shap is not None
        return self.shap.contributions(self.decisions(np.asarray(row, dtype=np.float32)))

    @classmethod
    def verified(cls, model: ScoringModel, *, rows: int = 256, tolerance: float = 1e-6, seed: int = 0) -> TreeEnsemble:
        """Lay out ``model``'s booster and check probabilities and contributions against XGBoost
        on generated applicants (the whole domain and each range's edges)."""
        if model.booster is None:
            raise UnsupportedModelError("not a tree model")
        ensemble = cls.from_booster(model.booster)
        matrix = model.encoder.encode_records(_applicants(model, rows, seed))
        expected_p = model.predict_proba(matrix)
        worst = float(np.max(np.abs(ensemble.predict_proba(matrix) - expected_p)))
        # one applicant at a time takes the compiled walk (rows without missing values): checked too
        alone = np.concatenate([ensemble.predict_proba(row[None]) for row in matrix[:32]])
        worst = max(worst, float(np.max(np.abs(alone - expected_p[:32]))))
        if not worst <= tolerance:
            raise UnsupportedModelError(f"probabilities differ from XGBoost by {worst:.2e} (tolerance {tolerance:.0e})")
        if ensemble.shap is None:
            return ensemble
        import xgboost as xgb

        expected = model.booster.predict(xgb.DMatrix(matrix, nthread=1), pred_contribs=True)[:, :-1]
        got = np.stack([ensemble.column_contributions(row) for row in matrix])
        # XGBoost accumulates contributions in float32: compare at float32 precision
        worst = float(np.max(np.abs(got - expected)))
        if not worst <= 1e-5:
            ensemble.shap = None
            log.warning("numpy TreeSHAP differs from XGBoost by %.2e: reasons will come from XGBoost", worst)
            return ensemble
        features, thresholds, default_right = ensemble._layout
        tables = FieldTables.build(ensemble.shap, features, thresholds, default_right, model.encoder.field_of_column)
        if tables is not None:
            fields = tables.contributions(matrix)
            worst = float(np.max(np.abs(fields - expected @ model.encoder.column_to_field)))
            if worst <= 1e-5:
                ensemble.fields = tables
            else:
                log.warning("per-field TreeSHAP tables differ from XGBoost by %.2e: not used", worst)
        return ensemble

    def field_contributions(self, matrix: np.ndarray, column_to_field: np.ndarray) -> np.ndarray:
        """TreeSHAP per row and field from the verified tables, any number of rows, each row on its own."""
        if self.fields is not None:
            return self.fields.contributions(matrix)
        assert self.shap is not None
        columns = np.stack([self.column_contributions(row) for row in np.asarray(matrix, dtype=np.float32)])
        return columns.reshape(len(matrix), -1) @ column_to_field


class FastModel:
    """A :class:`ScoringModel` whose probabilities come from a verified :class:`TreeEnsemble`;
    everything else (encoder, TreeSHAP contributions, schema) is the model's own."""

    def __init__(self, model: ScoringModel, ensemble: TreeEnsemble) -> None:
        self._model = model
        self._ensemble = ensemble

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        # XGBoost's own predictor wins on larger batches (its per-call overhead is amortised)
        if len(matrix) <= SMALL_BATCH:
            return self._ensemble.predict_proba(matrix)
        return self._model.predict_proba(matrix)

    @property
    def has_reasons(self) -> bool:
        return self._ensemble.shap is not None

    def field_contributions(self, matrix: np.ndarray) -> np.ndarray:
        # the verified numpy TreeSHAP for every batch size: a row's reasons do not depend on its batch
        if self._ensemble.shap is not None:
            return self._ensemble.field_contributions(matrix, self._model.encoder.column_to_field)
        return self._model.field_contributions(matrix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _depth(node: dict[str, Any]) -> int:
    return 0 if "leaf" in node else 1 + max(_depth(child) for child in node["children"])


def _fill(
    node: dict[str, Any],
    tree: int,
    position: int,
    level: int,
    depth: int,
    features: np.ndarray,
    thresholds: np.ndarray,
    leaves: np.ndarray,
    names: dict[str, int],
    default_right: np.ndarray,
) -> None:
    nodes = features.shape[1]
    if "leaf" in node:
        # a leaf above the bottom level: every path below it (always left) ends on its value
        low = high = position
        for _ in range(depth - level):
            low, high = 2 * low + 1, 2 * high + 2
        leaves[tree, low - nodes : high - nodes + 1] = node["leaf"]
        return
    split = node["split"]
    features[tree, position] = names[split] if split in names else int(split.removeprefix("f"))
    thresholds[tree, position] = np.float32(node["split_condition"])
    default_right[tree, position] = node.get("missing", node["yes"]) == node["no"]
    children = {child["nodeid"]: child for child in node["children"]}
    args = (depth, features, thresholds, leaves, names, default_right)
    _fill(children[node["yes"]], tree, 2 * position + 1, level + 1, *args)
    _fill(children[node["no"]], tree, 2 * position + 2, level + 1, *args)


def _applicants(model: ScoringModel, rows: int, seed: int) -> list[dict[str, Any]]:
    """Valid applicants where real ones are, plus the edges of each range and missing values.

    Numbers are drawn within the training profile's decile bins (each bin alike,
    so the tails are covered as well as the middle), or exactly on a bin edge;
    optional fields are missing in about a quarter of the rows; the first two
    rows hold each range's minimum and maximum.
    """
    rng = np.random.default_rng(seed)
    features = (model.profile or {}).get("features", {})
    records = []
    for i in range(rows):
        record: dict[str, Any] = {}
        for spec in model.encoder.fields:
            if not spec.required and i >= 2 and rng.random() < 0.25:
                record[spec.name] = None
            elif spec.type == "categorical":
                record[spec.name] = spec.codes[int(rng.integers(len(spec.codes)))]
            else:
                record[spec.name] = _number(spec, features.get(spec.name, {}).get("edges", []), i, rng)
        records.append(record)
    return records


def _number(spec: Any, edges: list[float], i: int, rng: np.random.Generator) -> float | int:
    """A value of a numeric field: its range's edges for the first two rows, then from the profile's bins."""
    assert spec.min is not None and spec.max is not None
    points = [spec.min, *(e for e in edges if spec.min <= e <= spec.max), spec.max]
    if i < 2:
        value = (spec.min, spec.max)[i]
    elif rng.random() < 0.2:
        value = points[int(rng.integers(len(points)))]
    else:
        bin_index = int(rng.integers(len(points) - 1))
        value = rng.uniform(points[bin_index], points[bin_index + 1])
    if spec.type == "integer":
        return int(np.clip(np.rint(value), spec.min, spec.max))
    return float(value)
