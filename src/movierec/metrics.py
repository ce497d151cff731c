"""Metric functions on plain arrays, computed exactly (no shuffling of ties).

A leaf module (numpy only) below the models: evaluation reports with it, and
models that choose a setting on held-out data (the item-item path's lambda) score
with the same definitions.

Top-K metrics take, per user, the ranked list of recommended movie indices and
the set of relevant ones (the user's test movies). Definitions follow the
common recommender-systems usage:

- ``recall@K`` = hits in the top K / number of relevant items;
- ``precision@K`` = hits / K;
- ``hit_rate@K`` = 1 if any hit in the top K;
- ``ndcg@K`` = DCG / ideal DCG, binary gains, discount 1/log2(rank + 1);
- ``map@K`` = mean over hits of precision at each hit's rank, divided by min(|relevant|, K).

Every metric is averaged over users with at least one relevant item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOP_K_METRICS = ("recall", "precision", "ndcg", "map", "hit_rate")


def top_k_metrics(
    recommended: Sequence[Sequence[int]] | np.ndarray,
    relevant: Sequence[set[int]],
    k: int,
) -> dict[str, float]:
    """Mean recall, precision, NDCG, MAP and hit rate at ``k`` over users with relevant items."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if len(recommended) != len(relevant):
        raise ValueError("recommended and relevant need one entry per user")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = dict.fromkeys(TOP_K_METRICS, 0.0)
    users = 0
    for ranked, truth in zip(recommended, relevant, strict=True):
        if not truth:
            continue
        users += 1
        hits = np.fromiter((item in truth for item in list(ranked)[:k]), dtype=bool)
        n_hits = int(hits.sum())
        totals["recall"] += n_hits / len(truth)
        totals["precision"] += n_hits / k
        totals["hit_rate"] += float(n_hits > 0)
        ideal = discounts[: min(len(truth), k)].sum()
        totals["ndcg"] += float(discounts[: len(hits)][hits].sum() / ideal)
        if n_hits:
            ranks = np.flatnonzero(hits) + 1
            precision_at_hits = np.arange(1, n_hits + 1) / ranks
            totals["map"] += float(precision_at_hits.sum() / min(len(truth), k))
    if users == 0:
        return {name: float("nan") for name in TOP_K_METRICS}
    return {name: total / users for name, total in totals.items()}


def relevant_sets(users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, list[set[int]]]:
    """Group (user, movie) pairs, e.g. test ratings as indices, into each user's set.

    Returns:
        ``(users, relevant)``: the distinct users in ascending order and, for each,
        the set of its movies: the ``relevant`` argument of :func:`top_k_metrics`.
    """
    users, movies = np.asarray(users), np.asarray(movies)
    order = np.argsort(users, kind="stable")
    users, movies = users[order], movies[order]
    distinct, starts = np.unique(users, return_index=True)
    bounds = np.append(starts, len(users))
    runs = zip(bounds[:-1], bounds[1:], strict=True)
    return distinct, [set(movies[a:b].tolist()) for a, b in runs]


def sample_users(users: np.ndarray, max_users: int, rng: np.random.Generator) -> np.ndarray:
    """``users`` (distinct, ascending) when at most ``max_users``, else a sorted sample
    of ``max_users`` of them drawn by ``rng``: evaluation on a bounded budget."""
    if len(users) > max_users:
        return np.sort(rng.choice(users, max_users, replace=False))
    return users


def catalogue_coverage(
    recommended: Sequence[Sequence[int] | np.ndarray] | np.ndarray, n_movies: int
) -> float:
    """Share of the catalogue (``n_movies`` items) that appears in at least one list."""
    if n_movies <= 0:
        return float("nan")
    shown = {int(item) for ranked in recommended for item in ranked}
    return len(shown) / n_movies


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error, in the units of the ratings (stars)."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error, in stars."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(diff)))
