"""The item-to-item ("movies like this one") measure.

For every test user with a training movie rated 4+ and a test movie rated 4+, the
user's highest-rated training movie (the latest on ties) is the query; the
similar-movies list for it is scored against the user's test movies rated 4+.
A list that follows the user's taste from one film they loved scores well; one
that drifts to blockbusters scores like popularity, which is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from movierec.data.training import TrainingSet
from movierec.metrics import top_k_metrics
from movierec.retrieval.topk import top_k

#: ``similar_fn(movie_index) -> (n, movies.size)`` similarity of each query movie to all.
SimilarFn = Callable[[np.ndarray], np.ndarray]


def item_to_item_queries(
    train: TrainingSet, test: pd.DataFrame, min_rating: float = 4.0
) -> tuple[np.ndarray, list[set[int]]]:
    """Each qualifying user's query movie (an index) and relevant test movie indices."""
    liked_test = test[test["rating"] >= min_rating]
    users = train.users.lookup(liked_test["user_id"])
    movies = train.movies.lookup(liked_test["movie_id"])
    known = (users > 0) & (movies > 0)
    relevant = (
        pd.DataFrame({"user": users[known], "movie": movies[known]})
        .groupby("user")["movie"]
        .apply(lambda m: set(m.tolist()))
    )
    ratings = train.ratings
    liked = pd.DataFrame(
        {
            "user": train.user_index,
            "movie": train.movie_index,
            "rating": train.rating,
            "timestamp": ratings["timestamp"].to_numpy() if "timestamp" in ratings else 0,
        }
    )
    liked = liked[(liked["rating"] >= min_rating) & liked["user"].isin(relevant.index)]
    # Highest rating first, then the latest, then the movie index for a fixed order.
    best = liked.sort_values(
        ["user", "rating", "timestamp", "movie"], ascending=[True, False, False, True]
    ).drop_duplicates("user")
    users_kept = best["user"].to_numpy()
    return best["movie"].to_numpy(np.int32), [relevant[u] for u in users_kept]


def evaluate_item_to_item(
    similar_fn: SimilarFn,
    train: TrainingSet,
    test: pd.DataFrame,
    k: int = 10,
    batch_size: int = 512,
) -> dict[str, float]:
    """NDCG@k and Recall@k of ``similar_fn``'s lists (the query movie itself excluded).

    Args:
        similar_fn: Maps query movie indices to their similarity to every movie of
            ``train`` (see :data:`SimilarFn`).
        train: The training set the similarities were learnt from; each user's query
            movie comes from it.
        test: Test ratings frame; ratings of 4+ stars are the relevant movies.
        k: Length of each similar-movies list.
        batch_size: Query movies scored per call of ``similar_fn``.

    Returns:
        ``queries`` (how many users qualified), ``ndcg@k`` and ``recall@k``.
    """
    queries, relevant = item_to_item_queries(train, test)
    ranked_rows = []
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        scores = np.array(similar_fn(batch), dtype=np.float32)
        scores[:, 0] = -np.inf  # the unknown-movie slot is never an answer
        _, ranked = top_k(scores, k, [np.array([q]) for q in batch])
        ranked_rows.append(ranked)
    ranked = np.concatenate(ranked_rows) if ranked_rows else np.zeros((0, k), np.int32)
    metrics = top_k_metrics(ranked, relevant, k)
    return {"queries": len(queries), f"ndcg@{k}": metrics["ndcg"], f"recall@{k}": metrics["recall"]}
