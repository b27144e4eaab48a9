"""Compiled loops for TreeSHAP per field and the reason ranking (numba, cached on disk).

Each row is computed on its own, trees in the same order, so one applicant
scored by the service and the same applicant in a million-row batch get
bit-identical contributions. Batches of ``PARALLEL_ROWS`` rows or more are
spread over the cores; smaller ones run on the calling thread.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

if TYPE_CHECKING:
    from credit_risk.trees.shap import FieldTables

PARALLEL_ROWS = 1024
BLOCK = 64  # rows per block: a block's rows and sums, and one tree's table, fit in the L1/L2 caches


def _field_shap_rows(
    x, split_feature, split_threshold, split_default, tree_splits, tree_fields, tree_width, table, n_fields
):
    rows, trees, columns = x.shape[0], split_feature.shape[0], x.shape[1]
    out = np.zeros((rows, n_fields))
    blocks = (rows + BLOCK - 1) // BLOCK
    for b in numba.prange(blocks):  # a block of rows against one tree at a time: the tree stays in cache
        first, last = b * BLOCK, min(rows, (b + 1) * BLOCK)
        n = last - first
        block = np.empty((columns, n), dtype=np.float32)  # the block transposed: a split reads one run
        for r in range(n):
            for c in range(columns):
                block[c, r] = x[first + r, c]
        sums = np.zeros((n, n_fields))
        pattern = np.empty(n, dtype=np.int64)
        for t in range(trees):
            pattern[:] = 0
            for j in range(tree_splits[t]):  # one split over the block's rows: a loop LLVM vectorises
                feature = split_feature[t, j]
                threshold = split_threshold[t, j]
                default = split_default[t, j]
                for r in range(n):  # branch-free: a missing value takes the default direction
                    value = block[feature, r]
                    right = (value >= threshold) | ((value != value) & default)
                    pattern[r] |= np.int64(right) << j
            width = tree_width[t]
            for r in range(n):  # per row, the tree's fields in slot order: the same sums whatever the block
                row_pattern = pattern[r]  # a local: the loop below must not reload it
                for k in range(width):
                    sums[r, tree_fields[t, k]] += table[t, row_pattern, k]
        out[first:last] = sums
    return out


def _top_reasons_rows(contributions, k):
    """Per row, up to ``k`` field indices, largest positive contribution first, ties to the lower index
    (what ``np.argsort(-c, kind="stable")[:k]`` then ``c > 0`` gives); -1 pads.

    One pass over the fields per row, each positive value inserted into the
    row's sorted top ``k`` after any equal one (fields come in index order).
    """
    rows, fields = contributions.shape
    out = np.full((rows, k), -1, dtype=np.int32)
    for r in numba.prange(rows):
        kept = np.zeros(k)  # the values of out[r], descending
        n = 0
        for f in range(fields):
            value = contributions[r, f]
            if value > 0.0 and (n < k or value > kept[k - 1]):
                slot = min(n, k - 1)
                while slot > 0 and kept[slot - 1] < value:
                    kept[slot], out[r, slot] = kept[slot - 1], out[r, slot - 1]
                    slot -= 1
                kept[slot], out[r, slot] = value, f
                n = min(n + 1, k)
    return out


def _leaf_values_row(row, features, thresholds, default_right, node_offset, leaf_offset, leaves, depth):
    """One row's leaf value in every tree: the level-by-level walk of
    :meth:`credit_risk.trees.layout.TreeEnsemble.margin`, right when ``x >= split``, a missing value
    (NaN) taking the node's default branch."""
    out = np.empty(node_offset.shape[0], dtype=leaves.dtype)
    for t in range(node_offset.shape[0]):
        flat = 0
        for _ in range(depth):
            node = node_offset[t] + flat
            value = row[features[node]]
            right = default_right[node] if value != value else value >= thresholds[node]
            flat = 2 * flat + 2 if right else 2 * flat + 1
        out[t] = leaves[leaf_offset[t] + flat]
    return out


def compiled(function: Callable[..., Any], *, parallel: bool, nogil: bool = True) -> Any:
    """``function`` compiled with numba and cached on disk, on the calling thread or over the cores.

    numba names a cached compilation after the function's qualified name and
    first line, not its flags: the serial and parallel builds of one function
    would share a cache entry, and whichever was compiled first would run for
    both (the parallel build ran on one core that way). The parallel build is
    therefore compiled from a copy named ``<name>_parallel``, the build that
    keeps the GIL (``nogil=False``) from one named ``<name>_gil``.

    A batch releases the GIL while it runs (other threads go on meanwhile).
    One applicant's few microseconds on the service's event loop keep it: a
    release there let the prediction log's thread take the GIL, and the loop
    then waited for it back far longer than the call took.
    """
    suffix = "_parallel" if parallel else "" if nogil else "_gil"
    if suffix:
        name = f"{function.__name__}{suffix}"
        function = types.FunctionType(function.__code__, function.__globals__, name, function.__defaults__)
        function.__qualname__ = name
    return numba.njit(cache=True, nogil=nogil, parallel=parallel)(function)


_serial_shap = compiled(_field_shap_rows, parallel=False)
_parallel_shap = compiled(_field_shap_rows, parallel=True)
_one_row_shap = compiled(_field_shap_rows, parallel=False, nogil=False)
_serial_top = compiled(_top_reasons_rows, parallel=False)
leaf_values_row = compiled(_leaf_values_row, parallel=False, nogil=False)  # one applicant only
_parallel_top = compiled(_top_reasons_rows, parallel=True)


def field_shap(tables: FieldTables, matrix: np.ndarray) -> np.ndarray:
    """(rows, fields) float64 Shapley values of a float32 C-contiguous matrix."""
    rows = len(matrix)  # one applicant keeps the GIL (see compiled)
    run = _one_row_shap if rows == 1 else _parallel_shap if rows >= PARALLEL_ROWS else _serial_shap
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
