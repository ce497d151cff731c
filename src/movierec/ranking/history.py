"""Rating histories as fixed-width arrays, and batches that share them between pairs.

The network sums each query's history once and scores several movies against it
(``slot`` maps a pair to its query row). Gathering a history per *pair* instead
costs ~20x more on CPU (XLA's scatter-add in the backward pass), so training
batches group a few ratings of the same user, and predictions deduplicate queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from movierec.models.base import QueryBatch


def pad_histories(
    histories: Sequence[np.ndarray], ratings: Sequence[np.ndarray], width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) movie indices (0 = padding) and ratings; keeps the last ``width`` entries."""
    movies = np.zeros((len(histories), width), np.int32)
    stars = np.zeros((len(histories), width), np.float32)
    for row, (h, r) in enumerate(zip(histories, ratings, strict=True)):
        h, r = np.asarray(h)[-width:], np.asarray(r)[-width:]
        movies[row, : len(h)] = h
        stars[row, : len(r)] = r
    return movies, stars


def user_histories(
    user_index: np.ndarray, movie_index: np.ndarray, rating: np.ndarray, num_users: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user padded histories (row = user index) of the given ratings."""
    order = np.argsort(user_index, kind="stable")
    bounds = np.searchsorted(user_index[order], np.arange(num_users + 1))
    movies = [movie_index[order[bounds[u] : bounds[u + 1]]] for u in range(num_users)]
    stars = [rating[order[bounds[u] : bounds[u + 1]]] for u in range(num_users)]
    return pad_histories(movies, stars, width)


def unique_queries(queries: QueryBatch) -> tuple[np.ndarray, np.ndarray]:
    """Rows of distinct queries (same user and history) and each query's position among them.

    Rows that share the very same history arrays (``QueryBatch.take`` of one query, as
    serving does) are matched by identity first, so they skip hashing the history bytes.
    """
    keys: dict[tuple[int, bytes, bytes], int] = {}
    same: dict[tuple[int, int, int], int] = {}
    first: list[int] = []
    slot = np.empty(len(queries), np.int32)
    for i in range(len(queries)):
        history, ratings = queries.histories[i], queries.history_ratings[i]
        fast = (int(queries.user_index[i]), id(history), id(ratings))
        if fast in same:
            slot[i] = same[fast]
            continue
        key = (
            fast[0],
            np.asarray(history, np.int64).tobytes(),
            np.asarray(ratings, np.float32).tobytes(),
        )
        if key not in keys:
            keys[key] = len(first)
            first.append(i)
        slot[i] = same[fast] = keys[key]
    return np.asarray(first, np.int64), slot


class HistoryBatches(keras.utils.PyDataset):
    """Batches of ``users_per_batch`` users x up to ``ratings_per_user`` of their ratings.

    Each epoch visits every rating once, in random user groups; padding pairs get
    sample weight 0. ``id_dropout`` replaces that share of user indices by 0
    (unknown), so the network learns to score from the history alone, as it must
    for visitors without a trained id.
    """

    def __init__(
        self,
        user: np.ndarray,
        movie: np.ndarray,
        rating: np.ndarray,
        histories: tuple[np.ndarray, np.ndarray],
        users_per_batch: int,
        ratings_per_user: int,
        *,
        id_dropout: float = 0.0,
        seed: int = 0,
    ):
        super().__init__()
        self.user, self.movie, self.rating = user, movie, rating
        self.history, self.history_rating = histories
        self.users_per_batch = users_per_batch
        self.ratings_per_user = ratings_per_user
        self.id_dropout = id_dropout
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.groups) // self.users_per_batch)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        u, k = self.users_per_batch, self.ratings_per_user
        groups = self.groups[index * u : (index + 1) * u]
        if len(groups) < u:  # keep one batch shape: a single compiled step
            groups = np.vstack([groups, np.full((u - len(groups), k), -1, np.int64)])
        pairs = groups.reshape(-1)
        valid = pairs >= 0
        pairs = np.where(valid, pairs, 0)
        user = np.where(groups[:, 0] >= 0, self.user[np.maximum(groups[:, 0], 0)], 0)
        query_user = user
        if self.id_dropout > 0:
            hide = self.rng.random(u) < self.id_dropout
            query_user = np.where(hide, 0, user)
        inputs = {
            "user": query_user.astype(np.int32),
            "history": self.history[user],
            "history_rating": self.history_rating[user],
            "slot": np.repeat(np.arange(u, dtype=np.int32), k),
            "movie": np.where(valid, self.movie[pairs], 0).astype(np.int32),
        }
        return inputs, np.where(valid, self.rating[pairs], 0.0), valid.astype(np.float32)

    def on_epoch_end(self) -> None:
        """Regroup: shuffle ratings, cut each user's into groups of k, shuffle the groups."""
        n, k = len(self.rating), self.ratings_per_user
        order = self.rng.permutation(n)
        order = order[np.argsort(self.user[order], kind="stable")]
        users = self.user[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        position = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        new_group = (position % k) == 0
        group_of = np.cumsum(new_group) - 1
        groups = np.full((int(new_group.sum()), k), -1, np.int64)
        groups[group_of, position % k] = order
        self.groups = groups[self.rng.permutation(len(groups))]
