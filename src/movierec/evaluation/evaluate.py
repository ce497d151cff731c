"""Evaluate trained models on a test split, the way the benchmark and CLI report them.

Test users are queried with their training history; movies they rated in
training are excluded from their top-K (by default), since recommending what
someone already watched is not a recommendation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.metrics import (
    catalogue_coverage,
    mae,
    relevant_sets,
    rmse,
    sample_users,
    top_k_metrics,
)
from movierec.models.base import QueryBatch, Ranker, Retriever
from movierec.ranking.blend import DEFAULT_STAR_WEIGHT, blend_scores
from movierec.retrieval.topk import top_k


def evaluate_ranker(ranker: Ranker, train: TrainingSet, test: pd.DataFrame) -> dict[str, float]:
    """RMSE and MAE in stars over every test rating (unknown users/movies included)."""
    user_index = train.users.lookup(test["user_id"])
    movie_index = train.movies.lookup(test["movie_id"])
    queries = QueryBatch.from_training(train, user_index)
    predicted = ranker.predict(queries, movie_index)
    actual = test["rating"].to_numpy(dtype=np.float32)
    return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual), "count": len(test)}


def evaluate_ranker_on_shards(
    ranker: Ranker, train: ShardedTrainingSet, max_ratings: int = 200_000
) -> dict[str, float]:
    """RMSE and MAE over a sharded split's test ratings (the first ``max_ratings`` of
    them in shard order: the hash split already made them a random sample)."""
    histories = train.histories()
    predicted: list[np.ndarray] = []
    actual: list[np.ndarray] = []
    left = max_ratings
    for user, movie, rating in train.chunks("test"):
        if left <= 0:
            break
        user, movie, rating = (np.asarray(a[:left]) for a in (user, movie, rating))
        for start in range(0, len(user), 8192):
            rows = slice(start, start + 8192)
            views = [histories.of(u) for u in user[rows]]
            queries = QueryBatch(user[rows], [v[0] for v in views], [v[1] for v in views])
            predicted.append(ranker.predict(queries, movie[rows]))
        actual.append(rating)
        left -= len(user)
    if not actual:
        return {"count": 0}
    p, a = np.concatenate(predicted), np.concatenate(actual)
    return {"rmse": rmse(p, a), "mae": mae(p, a), "count": len(a)}


def evaluate_retriever_on_shards(
    retriever: Retriever,
    train: ShardedTrainingSet,
    max_users: int = 2000,
    seed: int = 0,
    ks: Sequence[int] = (10, 100),
) -> dict[str, float]:
    """Top-K metrics over a sharded split's test ratings for up to ``max_users`` test
    users picked by ``seed`` (each queried with their training history, movies seen in
    training excluded), beside popularity (training rating counts) on the same users.

    Args:
        retriever: A retriever fitted on ``train``.
        train: The open sharded set; its ``test`` part is read once.
        max_users: Most test users evaluated (a random sample when there are more).
        seed: Seeds the choice of users.
        ks: List lengths at which metrics are reported.

    Returns:
        ``users`` (how many were evaluated) and ``ndcg@K``, ``recall@K``,
        ``popularity_ndcg@K`` and ``popularity_recall@K`` for each K; only ``users``
        (0) when no test rating has a known user and movie.
    """
    histories = train.histories()
    users_parts, movies_parts = [], []
    for user, movie, _ in train.chunks("test"):
        known = (np.asarray(user) > 0) & (np.asarray(movie) > 0)
        users_parts.append(np.asarray(user)[known])
        movies_parts.append(np.asarray(movie)[known])
    if not users_parts or not sum(len(u) for u in users_parts):
        return {"users": 0}
    user, movie = np.concatenate(users_parts), np.concatenate(movies_parts)
    del users_parts, movies_parts
    chosen = np.isin(user, sample_users(np.unique(user), max_users, np.random.default_rng(seed)))
    candidates_users, relevant = relevant_sets(user[chosen], movie[chosen])
    popularity = np.bincount(histories.movies, minlength=train.movies.size).astype(np.float32)
    candidates = retriever.candidate_embeddings()
    max_k = max(ks)
    ranked, ranked_popular = [], []
    for start in range(0, len(candidates_users), 256):
        batch = candidates_users[start : start + 256]
        queries = QueryBatch.from_histories(histories, batch)
        exclude = queries.histories
        scores = retriever.query_embeddings(queries) @ candidates.T
        ranked.append(top_k(scores, max_k, exclude)[1])
        tiled = np.broadcast_to(popularity, (len(batch), len(popularity)))
        ranked_popular.append(top_k(tiled, max_k, exclude)[1])
    results: dict[str, float] = {"users": len(candidates_users)}
    for name, rows in (("", ranked), ("popularity_", ranked_popular)):
        lists = np.concatenate(rows)
        for k in ks:
            metrics = top_k_metrics(lists, relevant, k)
            results[f"{name}ndcg@{k}"] = metrics["ndcg"]
            results[f"{name}recall@{k}"] = metrics["recall"]
    return results


def test_relevance(
    train: TrainingSet, test: pd.DataFrame, min_rating: float | None = None
) -> tuple[np.ndarray, list[set[int]]]:
    """Users to evaluate (indices) and, for each, the relevant test movie indices.

    ``min_rating`` keeps only test ratings at or above it (e.g. 4 stars); users
    unknown to the training set are left out, as they have no history to query with.
    """
    if min_rating is not None:
        test = test[test["rating"] >= min_rating]
    users = train.users.lookup(test["user_id"])
    movies = train.movies.lookup(test["movie_id"])
    known = (users > 0) & (movies > 0)
    distinct, relevant = relevant_sets(users[known], movies[known])
    return distinct.astype(np.int32), relevant


def evaluate_scores(
    score_fn,
    train: TrainingSet,
    test: pd.DataFrame,
    ks: Sequence[int] = (10, 100),
    exclude_seen: bool = True,
    min_rating: float | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Top-K metrics for any scorer: ``score_fn(user_index) -> (n, movies.size)`` scores.

    One function for movierec's models and the benchmark's peers alike, so
    every system is measured by the same code.

    Args:
        score_fn: Maps a batch of user indices to their scores over every movie
            index of ``train`` (column 0, the unknown movie, is never returned).
        train: The training set the scorer was fitted on: its vocabularies index
            the test ratings, its histories are the excluded movies.
        test: Test ratings frame; users or movies unknown to ``train`` are dropped.
        ks: List lengths at which metrics are reported.
        exclude_seen: Leave out each user's training movies before cutting the list.
        min_rating: Count only test ratings of at least this many stars as relevant;
            ``None`` counts them all.
        batch_size: Users scored per call of ``score_fn``.

    Returns:
        ``users`` (how many were evaluated) and, for each K, ``recall@K``,
        ``precision@K``, ``ndcg@K``, ``map@K``, ``hit_rate@K`` and ``coverage@K``.
    """
    users, relevant = test_relevance(train, test, min_rating)
    histories = train.histories()
    max_k = max(ks)
    ranked_rows = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        exclude = [histories[u] for u in batch] if exclude_seen else None
        _, ranked = top_k(np.asarray(score_fn(batch)), max_k, exclude)
        ranked_rows.append(ranked)
    ranked = np.concatenate(ranked_rows) if ranked_rows else np.zeros((0, max_k), np.int32)
    results: dict[str, float] = {"users": len(users)}
    for k in ks:
        for name, value in top_k_metrics(ranked, relevant, k).items():
            results[f"{name}@{k}"] = value
        shown = ranked[:, :k]
        results[f"coverage@{k}"] = catalogue_coverage([shown[shown > 0]], len(train.movies))
    return results


def evaluate_two_stage(
    retriever: Retriever,
    ranker: Ranker,
    train: TrainingSet,
    test: pd.DataFrame,
    depth: int = 200,
    star_weight: float = DEFAULT_STAR_WEIGHT,
    ks: Sequence[int] = (10,),
    min_rating: float | None = 4.0,
    batch_size: int = 256,
) -> dict[str, float]:
    """Top-K metrics of retrieve ``depth`` -> rank -> keep K, as the Recommender does it.

    ``train`` must be the training set both models were fitted on (same vocabularies).

    Args:
        retriever: The first stage, fitted on ``train``.
        ranker: The second stage, fitted on ``train``.
        train: The shared training set.
        test: Test ratings frame.
        depth: Candidates retrieved per user before ranking.
        star_weight: Weight of the predicted stars in the blended score (see
            :func:`movierec.ranking.blend.blend_scores`).
        ks: List lengths at which metrics are reported (each at most ``depth``).
        min_rating: Count only test ratings of at least this many stars as relevant.
        batch_size: Users scored at once.

    Returns:
        The metrics of :func:`evaluate_scores`; movies seen in training are excluded.
    """
    retrieve = retriever_scores(retriever, train)
    histories = train.histories()

    def score(user_index: np.ndarray) -> np.ndarray:
        """Blended scores of each user's retrieved candidates; -inf for every other movie."""
        scores, candidates = top_k(retrieve(user_index), depth, [histories[u] for u in user_index])
        rows = np.repeat(np.arange(len(user_index)), depth)
        queries = QueryBatch.from_training(train, user_index).take(rows)
        valid = candidates.reshape(-1) > 0
        stars = np.zeros(rows.shape, np.float32)
        stars[valid] = ranker.predict(
            queries.take(np.flatnonzero(valid)), candidates.reshape(-1)[valid]
        )
        final = blend_scores(scores, stars.reshape(scores.shape), star_weight)
        dense = np.full((len(user_index), train.movies.size), -np.inf, np.float32)
        safe = np.where(candidates > 0, candidates, 0)
        np.put_along_axis(dense, safe, np.where(candidates > 0, final, -np.inf), axis=1)
        return dense

    return evaluate_scores(score, train, test, ks, True, min_rating, batch_size)


def retriever_scores(retriever: Retriever, train: TrainingSet):
    """A ``score_fn`` for :func:`evaluate_scores` from a trained retriever."""
    candidates = retriever.candidate_embeddings()

    def score(user_index: np.ndarray) -> np.ndarray:
        """Query-candidate dot products of the users, over every movie."""
        queries = QueryBatch.from_training(train, user_index)
        return retriever.query_embeddings(queries) @ candidates.T

    return score


def evaluate_retriever(
    retriever: Retriever,
    train: TrainingSet,
    test: pd.DataFrame,
    ks: Sequence[int] = (10, 100),
    exclude_seen: bool = True,
    min_rating: float | None = None,
) -> dict[str, float]:
    """Recall, precision, NDCG, MAP, hit rate and coverage at each K.

    Args:
        retriever: A retriever fitted on ``train``.
        train: The training set it was fitted on.
        test: Test ratings frame.
        ks: List lengths at which metrics are reported.
        exclude_seen: Leave out each user's training movies before cutting the list.
        min_rating: Count only test ratings of at least this many stars as relevant;
            ``None`` counts them all.

    Returns:
        The metrics of :func:`evaluate_scores`.
    """
    return evaluate_scores(
        retriever_scores(retriever, train), train, test, ks, exclude_seen, min_rating
    )
