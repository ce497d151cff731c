"""Exact top-K over a score matrix with per-row exclusions: the one place this is done."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray] | None = None,
    exclude_all: Sequence[int] = (0,),
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns per row of ``scores`` (highest first), as (scores, indices).

    ``exclude[i]`` lists columns never to return for row ``i`` (watched movies);
    ``exclude_all`` lists columns never returned at all (column 0: the unknown-movie slot).
    Equal scores are ordered by column, lowest first, also at the cut: the top ``k`` is
    always the first ``k`` of the top ``k + n``, so pages of a list never overlap or skip.
    Excluded columns score -inf; when fewer than ``k`` columns remain, the tail
    of a row has index -1 and score -inf.

    Args:
        scores: ``(queries, candidates)`` score matrix; it is copied, not changed.
        k: How many columns to return per row (at least 1).
        exclude: One array of column indices per row, or ``None`` for none.
        exclude_all: Columns excluded from every row.

    Returns:
        ``(scores, indices)``, both ``(queries, k)``: float32 scores and int32 column
        indices, best first.

    Raises:
        ValueError: ``scores`` is not 2-D, ``k < 1``, or ``exclude`` has not one
            entry per row.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if scores.ndim != 2:
        raise ValueError("scores must be a 2-D array (queries x candidates)")
    n_rows, n_cols = scores.shape
    if k < 1:
        raise ValueError("k must be at least 1")
    if len(exclude_all):
        scores[:, np.asarray(exclude_all, dtype=np.int64)] = -np.inf
    if exclude is not None:
        if len(exclude) != n_rows:
            raise ValueError("exclude needs one entry per row of scores")
        for row, columns in enumerate(exclude):
            if len(columns):
                scores[row, np.asarray(columns, dtype=np.int64)] = -np.inf
    k_eff = min(k, n_cols)
    if k_eff < n_cols:
        part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        _lowest_columns_win_ties(scores, part)
    else:
        part = np.tile(np.arange(n_cols), (n_rows, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # best first, then the lower column
    indices = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    indices[~np.isfinite(top_scores)] = -1
    if k_eff < k:
        pad = k - k_eff
        indices = np.pad(indices, ((0, 0), (0, pad)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return top_scores, indices


def _lowest_columns_win_ties(scores: np.ndarray, part: np.ndarray) -> None:
    """Where ``argpartition`` cut through a run of equal scores (it picks among them
    arbitrarily), make ``part`` hold the lowest-numbered of them, in place."""
    chosen = np.take_along_axis(scores, part, axis=1)
    cut = chosen.min(axis=1)
    tied = (scores == cut[:, None]).sum(axis=1)
    taken = (chosen == cut[:, None]).sum(axis=1)
    for row in np.flatnonzero((tied > taken) & np.isfinite(cut)):
        above = np.flatnonzero(scores[row] > cut[row])
        ties = np.flatnonzero(scores[row] == cut[row])[: part.shape[1] - len(above)]
        part[row] = np.concatenate([above, ties])
