"""TreeSHAP for the tree runtime: per-leaf closed forms, and per-tree tables for whole batches.

XGBoost's ``pred_contribs`` computes the exact path-dependent Shapley values
of v(S) = sum over leaves of the leaf value times, per node on its path,
1[x goes that way] if the node's feature is in S else the node's cover share.
Each leaf's term is a product over the path's distinct features, so its
Shapley value for feature i has a closed form: value * (p_one_i - p_zero_i) *
sum_s w(s, d) e_s, with e_s the size-s symmetric sums of the other features'
(p_zero, p_one) and w(s, d) = s!(d-s-1)!/d!  (:class:`PathTables`).

A tree's Shapley values depend on the row only through the directions it
takes at the tree's split nodes, so for a tree of at most
``MAX_PATTERN_NODES`` splits every pattern of directions is tabulated once,
per field (:class:`FieldTables`). Scoring a row is then, per tree, a few
comparisons giving the pattern and a few additions (compiled, in
:mod:`credit_risk.trees.kernels`): one applicant and a million rows take the
same code, so a row's reasons never depend on the batch it came in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

MAX_PATTERN_NODES = 10  # 2**10 patterns per tree; trees with more splits keep the per-row path tables


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

    def phi(self, right: np.ndarray) -> np.ndarray:
        """Per (tree, leaf) cell and slot, its Shapley value given every node's decision (``right``, flat)."""
        strays = np.zeros(len(self._first_row), dtype=self.path_bit.dtype)  # slots whose nodes the row leaves
        for nodes, went_right, bit in zip(self.path_node, self.path_right, self.path_bit, strict=True):
            strays |= (right[nodes] != went_right) * bit
        return np.take(self.table, self._first_row + (self.used_bits & ~strays), axis=0)  # (cells, slots)

    def contributions(self, right: np.ndarray) -> np.ndarray:
        """Shapley values per encoded column, given every node's decision (``right``, flat)."""
        phi = self.phi(right)
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


class FieldTables:
    """Per tree and pattern of split directions: each of the tree's fields' Shapley value."""

    def __init__(
        self,
        *,
        split_feature: np.ndarray,  # (trees, max splits) encoded column of split j (bit j of the pattern)
        split_threshold: np.ndarray,  # (trees, max splits) float32: right when x >= threshold
        split_default: np.ndarray,  # (trees, max splits) a missing value goes right
        tree_splits: np.ndarray,  # (trees,) splits per tree
        tree_fields: np.ndarray,  # (trees, max fields) field index per slot (0 when unused)
        tree_width: np.ndarray,  # (trees,) fields per tree
        table: np.ndarray,  # (trees, patterns, max fields) float64
        n_fields: int,
    ) -> None:
        self.split_feature = split_feature
        self.split_threshold = split_threshold
        self.split_default = split_default
        self.tree_splits = tree_splits
        self.tree_fields = tree_fields
        self.tree_width = tree_width
        self.table = table
        self.n_fields = n_fields

    @classmethod
    def build(
        cls,
        paths: PathTables,
        features: np.ndarray,
        thresholds: np.ndarray,
        default_right: np.ndarray,
        field_of_column: np.ndarray,
    ) -> FieldTables | None:
        """Tabulate every tree's patterns from ``paths``; None when a tree has too many splits."""
        trees, nodes = features.shape
        real = np.isfinite(thresholds)  # padding nodes of the complete layout have an infinite split
        splits = real.sum(axis=1)
        most = max(int(splits.max()), 1)
        if most > MAX_PATTERN_NODES:
            return None
        tree_nodes = np.zeros((trees, most), dtype=np.int64)
        n_fields = int(field_of_column.max()) + 1
        column_field = np.append(field_of_column, n_fields)  # the unused-slot column maps past the fields
        field_lists = []
        for t in range(trees):
            flat = t * nodes + np.flatnonzero(real[t])
            tree_nodes[t, : len(flat)] = flat
            field_lists.append(sorted({int(field_of_column[features[t, n]]) for n in np.flatnonzero(real[t])}))
        width = max(1, max(len(f) for f in field_lists))
        tree_fields = np.full((trees, width), -1, dtype=np.int64)
        slot_of = np.full((trees, n_fields + 1), width, dtype=np.int64)  # field -> slot in its tree (width: none)
        for t, fields in enumerate(field_lists):
            tree_fields[t, : len(fields)] = fields
            slot_of[t, fields] = np.arange(len(fields))
        cells = len(paths.used_bits)
        cell_tree = np.arange(cells) // (cells // trees)
        # per (cell, path slot): where its value goes in the flat (tree, field slot) accumulator
        target = cell_tree[:, None] * (width + 1) + slot_of[cell_tree[:, None], column_field[paths.slot_feature]]
        patterns = 2**most
        table = np.zeros((trees, patterns, width))
        for pattern in range(patterns):
            right = np.zeros(trees * nodes, dtype=bool)
            for j in range(most):
                has = splits > j
                right[tree_nodes[has, j]] = bool((pattern >> j) & 1)
            phi = paths.phi(right)  # (cells, slots)
            sums = np.bincount(target.ravel(), weights=phi.ravel(), minlength=trees * (width + 1))
            table[:, pattern, :] = sums.reshape(trees, width + 1)[:, :width]
        flat_feature, flat_threshold, flat_default = features.ravel(), thresholds.ravel(), default_right.ravel()
        return cls(
            split_feature=flat_feature[tree_nodes].astype(np.int64),
            split_threshold=flat_threshold[tree_nodes].astype(np.float32),
            split_default=flat_default[tree_nodes].astype(np.bool_),
            tree_splits=splits.astype(np.int64),
            tree_fields=np.maximum(tree_fields, 0),
            tree_width=(tree_fields >= 0).sum(axis=1).astype(np.int64),
            table=table,
            n_fields=n_fields,
        )

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per row and field, its Shapley value (log-odds), summed over trees in tree order."""
        from credit_risk.trees import kernels

        return kernels.field_shap(self, np.ascontiguousarray(matrix, dtype=np.float32))
