"""Compiled loops for TreeSHAP per field and the reason ranking (numba, cached on disk).

Each row is computed on its own, trees in the same order, so one applicant
scored by the service and the same applicant in a million-row batch get
bit-identical contributions. Batches of ``PARALLEL_ROWS`` rows or more are
spread over the cores; smaller ones run on the calling thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from credit_risk.trees.shap import FieldTables

PARALLEL_ROWS = 1024
BLOCK = 64  # rows per block: a block's rows and sums, and one tree's table, fit in the L1/L2 caches


def _field_shap_rows(
    x, split_feature, split_threshold, split_default, tree_splits, tree_fields, tree_width, table, n_fields
):
    rows, trees = x.shape[0], split_feature.shape[0]
    out = np.zeros((rows, n_fields))
    blocks = (rows + BLOCK - 1) // BLOCK
    for b in numba.prange(blocks):  # a block of rows against one tree at a time: the tree stays in cache
        first, last = b * BLOCK, min(rows, (b + 1) * BLOCK)
        for t in range(trees):
            for r in range(first, last):
                pattern = 0
                for j in range(tree_splits[t]):  # branch-free: a missing value takes the default direction
                    value = x[r, split_feature[t, j]]
                    right = (value >= split_threshold[t, j]) | ((value != value) & split_default[t, j])
                    pattern |= np.int64(right) << j
                for k in range(tree_width[t]):
                    out[r, tree_fields[t, k]] += table[t, pattern, k]
    return out


def _top_reasons_rows(contributions, k):
    """Per row, up to ``k`` field indices, largest positive contribution first, ties to the lower index
    (what ``np.argsort(-c, kind="stable")[:k]`` then ``c > 0`` gives); -1 pads."""
    rows, fields = contributions.shape
    out = np.full((rows, k), -1, dtype=np.int32)
    for r in numba.prange(rows):
        for slot in range(k):
            best = -1
            best_value = 0.0
            for f in range(fields):
                value = contributions[r, f]
                if value > best_value:
                    taken = False
                    for s in range(slot):
                        if out[r, s] == f:
                            taken = True
                    if not taken:
                        best, best_value = f, value
            if best < 0:
                break
            out[r, slot] = best
    return out


_serial_shap = numba.njit(cache=True, nogil=True)(_field_shap_rows)
_parallel_shap = numba.njit(cache=True, nogil=True, parallel=True)(_field_shap_rows)
_serial_top = numba.njit(cache=True, nogil=True)(_top_reasons_rows)
_parallel_top = numba.njit(cache=True, nogil=True, parallel=True)(_top_reasons_rows)


def field_shap(tables: FieldTables, matrix: np.ndarray) -> np.ndarray:
    """(rows, fields) float64 Shapley values of a float32 C-contiguous matrix."""
    run = _parallel_shap if len(matrix) >= PARALLEL_ROWS else _serial_shap
    return run(
        matrix,
        tables.split_feature,
        tables.split_threshold,
        tables.split_default,
        tables.tree_splits,
        tables.tree_fields,
        tables.tree_width,
        tables.table,
        tables.n_fields,
    )


def top_reasons(contributions: np.ndarray, k: int) -> np.ndarray:
    """(rows, k) int32 field indices of the reasons, in order; -1 where a row has fewer."""
    contributions = np.ascontiguousarray(contributions, dtype=np.float64)
    run = _parallel_top if len(contributions) >= PARALLEL_ROWS else _serial_top
    return run(contributions, k)
