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

Reason codes need TreeSHAP. XGBoost's ``pred_contribs`` computes the exact
path-dependent Shapley values of v(S) = sum over leaves of the leaf value
times, per node on its path, 1[x goes that way] if the node's feature is in S
else the node's cover share. Each leaf's term is a product over the path's
distinct features, so its Shapley value for feature i has a closed form:
value * (p_one_i - p_zero_i) * sum_s w(s, d) e_s, with e_s the size-s
symmetric sums of the other features' (p_zero, p_one) and w(s, d) = s!(d-s-1)!/d!.
With paths of at most a few features that is a handful of array operations
per request instead of a DMatrix and a ``pred_contribs`` call; it is verified
against XGBoost like the probabilities.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import xgboost as xgb

from credit_risk.scoring import ScoringModel

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

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        """Raw log-odds per row: every tree walked at once, one level at a time."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if np.isnan(matrix).any():
            return self._margin_with_missing(matrix)
        if len(matrix) == 1:  # the common case: plain indexing beats take_along_axis by half
            row = matrix[0]
            flat = np.zeros(self.trees, dtype=np.intp)
            for _ in range(self.depth):
                node = self._node_offset + flat
                flat = 2 * flat + 1 + (row[self._features[node]] >= self._thresholds[node])
            return np.asarray([self._leaves[self._leaf_offset + flat].sum() + self.base_margin])
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
        worst = float(np.max(np.abs(ensemble.predict_proba(matrix) - model.predict_proba(matrix))))
        if not worst <= tolerance:
            raise UnsupportedModelError(f"probabilities differ from XGBoost by {worst:.2e} (tolerance {tolerance:.0e})")
        if ensemble.shap is None:
            return ensemble
        expected = model.booster.predict(xgb.DMatrix(matrix, nthread=1), pred_contribs=True)[:, :-1]
        got = np.stack([ensemble.column_contributions(row) for row in matrix])
        # XGBoost accumulates contributions in float32: compare at float32 precision
        worst = float(np.max(np.abs(got - expected)))
        if not worst <= 1e-5:
            ensemble.shap = None
            log.warning("numpy TreeSHAP differs from XGBoost by %.2e: reasons will come from XGBoost", worst)
        return ensemble


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
        if len(matrix) == 1 and self._ensemble.shap is not None:
            return self._ensemble.column_contributions(matrix[0])[None, :] @ self._model.encoder.column_to_field
        return self._model.field_contributions(matrix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class PathTables:
    """Per tree and leaf: the path's nodes, directions and cover shares, grouped by distinct feature."""

    def __init__(
        self,
        *,
        value: np.ndarray,  # (trees, leaves) leaf value, 0 for padding
        path_node: np.ndarray,  # (trees, leaves, depth) flat node index into the layout
        path_right: np.ndarray,  # (trees, leaves, depth) the path goes right at that node
        path_slot: np.ndarray,  # (trees, leaves, depth) which distinct-feature slot the node belongs to (-1: none)
        p_zero: np.ndarray,  # (trees, leaves, slots) product of cover shares per slot (1 when unused)
        slot_feature: np.ndarray,  # (trees, leaves, slots) encoded column per slot (n_columns when unused)
        weights: np.ndarray,  # (trees, leaves, slots) w(s, d) for s = 0..slots-1 (d = slots used)
        n_columns: int,
    ) -> None:
        self.n_columns = n_columns
        self.slots = p_zero.shape[2]
        cells = value.size  # trees x leaves
        # one contiguous row per path position: the hot loop reads whole rows
        self.path_node = np.ascontiguousarray(path_node.reshape(cells, -1).T)
        self.path_right = np.ascontiguousarray(path_right.reshape(cells, -1).T)
        # a bit per distinct-feature slot; padding nodes have no bit
        self.path_bit = np.ascontiguousarray(
            np.where(path_slot >= 0, 1 << np.maximum(path_slot, 0), 0).reshape(cells, -1).T
        )
        used = slot_feature < n_columns
        self.used_bits = (used * (1 << np.arange(self.slots))).sum(axis=2).reshape(cells)
        self.slot_feature = slot_feature.reshape(cells, self.slots)
        # Each slot's p_one is 0 or 1, so a leaf has 2**slots cases: precompute phi for each
        self.table = np.stack(
            [
                _phi(value, p_zero, weights, _pattern_ones(pattern, used)).reshape(cells, self.slots)
                for pattern in range(2**self.slots)
            ],
            axis=1,
        ).reshape(cells * 2**self.slots, self.slots)  # row = cell * patterns + pattern
        self._first_row = np.arange(cells) * 2**self.slots
        self._columns = self.slot_feature.ravel()

    @classmethod
    def build(
        cls, dumps: list[dict[str, Any]], depth: int, nodes: int, names: dict[str, int], n_columns: int
    ) -> PathTables:
        trees, leaves = len(dumps), 2**depth
        value = np.zeros((trees, leaves))
        path_node = np.zeros((trees, leaves, depth), dtype=np.intp)
        path_right = np.zeros((trees, leaves, depth), dtype=bool)
        path_slot = np.full((trees, leaves, depth), -1, dtype=np.intp)
        p_zero = np.ones((trees, leaves, depth))
        slot_feature = np.full((trees, leaves, depth), n_columns, dtype=np.intp)
        weights = np.zeros((trees, leaves, depth))
        for t, tree in enumerate(dumps):
            for leaf, (leaf_value, path) in enumerate(_paths(tree, 0, [])):
                value[t, leaf] = leaf_value
                slots: list[int] = []
                for k, (position, went_right, share, split) in enumerate(path):
                    feature = names[split] if split in names else int(split.removeprefix("f"))
                    if feature not in slots:
                        slots.append(feature)
                    slot = slots.index(feature)
                    path_node[t, leaf, k] = t * nodes + position
                    path_right[t, leaf, k] = went_right
                    path_slot[t, leaf, k] = slot
                    p_zero[t, leaf, slot] *= share
                    slot_feature[t, leaf, slot] = feature
                d = len(slots)
                for size in range(d):
                    weights[t, leaf, size] = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
        return cls(
            value=value,
            path_node=path_node,
            path_right=path_right,
            path_slot=path_slot,
            p_zero=p_zero,
            slot_feature=slot_feature,
            weights=weights,
            n_columns=n_columns,
        )

    def contributions(self, right: np.ndarray) -> np.ndarray:
        """Shapley values per encoded column, given every node's decision (``right``, flat)."""
        strays = np.zeros(len(self._first_row), dtype=self.path_bit.dtype)  # slots whose nodes the row leaves
        for nodes, went_right, bit in zip(self.path_node, self.path_right, self.path_bit, strict=True):
            strays |= (right[nodes] != went_right) * bit
        phi = np.take(self.table, self._first_row + (self.used_bits & ~strays), axis=0)  # (cells, slots)
        out = np.bincount(self._columns, weights=phi.ravel(), minlength=self.n_columns + 1)
        return out[: self.n_columns]


def _pattern_ones(pattern: int, used: np.ndarray) -> np.ndarray:
    """p_one per slot for one case: slot k follows when bit k of ``pattern`` is set (unused slots: 0)."""
    bits = np.asarray([(pattern >> k) & 1 for k in range(used.shape[2])], dtype=np.float64)
    return np.where(used, bits, 0.0)


def _phi(value: np.ndarray, p_zero: np.ndarray, weights: np.ndarray, p_one: np.ndarray) -> np.ndarray:
    """Closed-form Shapley value per leaf and slot (see the module docstring)."""
    slots = p_zero.shape[2]
    phi = np.zeros_like(p_zero)
    for i in range(slots):
        # coefficients e_s of the product over the other slots of (p_zero_j + p_one_j z)
        coef = [np.ones(value.shape)] + [np.zeros(value.shape) for _ in range(slots - 1)]
        for j in range(slots):
            if j == i:
                continue
            for size in range(slots - 1, 0, -1):
                coef[size] = coef[size] * p_zero[:, :, j] + coef[size - 1] * p_one[:, :, j]
            coef[0] = coef[0] * p_zero[:, :, j]
        total = sum(weights[:, :, size] * coef[size] for size in range(slots))
        phi[:, :, i] = value * (p_one[:, :, i] - p_zero[:, :, i]) * total
    return phi


def _paths(node: dict[str, Any], position: int, path: list) -> Iterator[tuple[float, list]]:
    """(leaf value, [(layout position, went right, cover share, split feature), ...]) for every real leaf."""
    if "leaf" in node:
        yield float(node["leaf"]), path
        return
    children = {child["nodeid"]: child for child in node["children"]}
    for child_id, went_right in ((node["yes"], False), (node["no"], True)):
        child = children[child_id]
        share = float(child["cover"]) / float(node["cover"])
        step = (position, went_right, share, node["split"])
        yield from _paths(child, 2 * position + 1 + int(went_right), [*path, step])


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
