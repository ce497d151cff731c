"""Rating histories as fixed-width arrays, and batches that share them between pairs.

Batches come from memory (:class:`HistoryBatches`) or stream from encoded Parquet
shards (:class:`ShardedHistoryBatches`); :func:`rating_feeds` picks.

The network sums each query's history once and scores several movies against it
(``slot`` maps a pair to its query row). Gathering a history per *pair* instead
costs ~20x more on CPU (XLA's scatter-add in the backward pass), so training
batches group a few ratings of the same user, and predictions deduplicate queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from movierec.data.histories import Histories, positions_in_runs
from movierec.data.shards import EncodedShard, ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
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


def unique_queries(queries: QueryBatch) -> tuple[np.ndarray, np.ndarray]:
    """Rows of distinct queries (same user and history) and each query's position among them.

    Rows that share the very same history arrays (``QueryBatch.take`` of one query, as
    serving does) are matched by identity first, so they skip hashing the history bytes;
    a batch that is all one query (a served request) is recognised without a Python loop.
    """
    if _one_query(queries):
        return np.zeros(1, np.int64), np.zeros(len(queries), np.int32)
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


def _one_query(queries: QueryBatch) -> bool:
    """Whether every row is the same user with the very same history arrays."""
    users = queries.user_index
    return (
        len(users) > 0
        and bool((users == users[0]).all())
        and len(set(map(id, queries.histories))) == 1
        and len(set(map(id, queries.history_ratings))) == 1
    )


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
        histories: Histories,
        history_length: int,
        users_per_batch: int,
        ratings_per_user: int,
        *,
        id_dropout: float = 0.0,
        seed: int = 0,
    ):
        super().__init__()
        self.user, self.movie, self.rating = user, movie, rating
        self.histories, self.history_length = histories, history_length
        self.users_per_batch = users_per_batch
        self.ratings_per_user = ratings_per_user
        self.id_dropout = id_dropout
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.groups) // self.users_per_batch)

    @staticmethod
    def count_batches(user: np.ndarray, users_per_batch: int, ratings_per_user: int) -> int:
        """Batches an epoch over ratings of ``user`` makes, without grouping them: each
        user's ratings fill ``ceil(count / ratings_per_user)`` groups."""
        counts = np.bincount(np.asarray(user))
        groups = int(np.sum(-(-counts // ratings_per_user)))
        return -(-groups // users_per_batch)

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
        history, history_rating = self.histories.padded(user, self.history_length)
        inputs = {
            "user": query_user.astype(np.int32),
            "history": history,
            "history_rating": history_rating,
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
        position = positions_in_runs(np.diff(np.r_[starts, n]))
        new_group = (position % k) == 0
        group_of = np.cumsum(new_group) - 1
        groups = np.full((int(new_group.sum()), k), -1, np.int64)
        groups[group_of, position % k] = order
        self.groups = groups[self.rng.permutation(len(groups))]


class ShardedHistoryBatches(keras.utils.PyDataset):
    """:class:`HistoryBatches` over encoded shards, holding one shard at a time.

    An epoch visits the shards in a fresh random order and each shard's ratings in
    random user groups, so every rating is seen once an epoch, as in memory; the
    shuffle is within a shard rather than across the table (shards of whole users,
    as ``movierec data synth`` writes them, lose nothing by it).
    """

    def __init__(
        self,
        shards: Sequence[EncodedShard],
        histories: Histories,
        history_length: int,
        users_per_batch: int,
        ratings_per_user: int,
        *,
        id_dropout: float = 0.0,
        seed: int = 0,
    ):
        super().__init__()
        self.shards = [s for s in shards if s.rows]
        self.options = dict(
            histories=histories,
            history_length=history_length,
            users_per_batch=users_per_batch,
            ratings_per_user=ratings_per_user,
            id_dropout=id_dropout,
        )
        self.rng = np.random.default_rng(seed)
        self.lengths = np.array(
            [
                HistoryBatches.count_batches(s.arrays()["user"], users_per_batch, ratings_per_user)
                for s in self.shards
            ],
            np.int64,
        )
        self.on_epoch_end()

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        position = int(np.searchsorted(self.ends, index, side="right"))
        shard = int(self.order[position])
        if self.loaded is None or self.loaded[0] != shard:
            a = self.shards[shard].arrays()
            batches = HistoryBatches(
                np.asarray(a["user"]),
                np.asarray(a["movie"]),
                np.asarray(a["rating"]),
                **self.options,
                seed=int(self.shard_seeds[shard]),
            )
            self.loaded = (shard, batches)
        return self.loaded[1][index - int(self.ends[position] - self.lengths[shard])]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.shards))
        self.ends = np.cumsum(self.lengths[self.order])
        self.shard_seeds = self.rng.integers(0, 2**31, len(self.shards))
        self.loaded: tuple[int, HistoryBatches] | None = None


@dataclass
class RatingFeeds:
    """What a rating network trains on: batches, early-stopping batches, the mean star.

    ``shuffle`` is passed to Keras's ``fit``: batches streamed from shards must be read
    in order (they shuffle within each shard themselves), or every batch reloads a shard.
    """

    fit: keras.utils.PyDataset
    validation: keras.utils.PyDataset | None
    mean_rating: float
    shuffle: bool = True


def rating_feeds(
    train: TrainingSet | ShardedTrainingSet, settings: dict[str, Any], seed: int
) -> RatingFeeds:
    """Batches from memory, or streamed from shards when ``train`` is sharded.

    In memory, a seeded ``validation_fraction`` of the ratings is held out; a sharded
    set brings its own validation part (chosen by its hash split). Histories hold only
    the ratings trained on, so validation looks like serving.
    """
    s = settings
    shape = dict(
        history_length=int(s["history_length"]),
        users_per_batch=int(s["users_per_batch"]),
        ratings_per_user=int(s["ratings_per_user"]),
    )
    if train.streaming:
        histories = train.histories("train")

        def sharded(part: str, id_dropout: float) -> ShardedHistoryBatches | None:
            if not train.count(part):
                return None
            shards = train.parts[part]
            return ShardedHistoryBatches(
                shards, histories, **shape, id_dropout=id_dropout, seed=seed
            )

        fit = sharded("train", float(s["id_dropout"]))
        if fit is None:
            raise ModelError("the sharded training set has no training ratings")
        return RatingFeeds(
            fit, sharded("validation", 0.0), train.mean_rating("train"), shuffle=False
        )

    order = np.random.default_rng(seed).permutation(len(train))
    n_val = int(round(len(train) * float(s["validation_fraction"])))
    val, fit_rows = order[:n_val], order[n_val:]
    histories = Histories.from_ratings(
        train.user_index[fit_rows],
        train.movie_index[fit_rows],
        train.rating[fit_rows],
        train.users.size,
    )

    def in_memory(rows: np.ndarray, id_dropout: float) -> HistoryBatches:
        return HistoryBatches(
            train.user_index[rows],
            train.movie_index[rows],
            train.rating[rows],
            histories,
            **shape,
            id_dropout=id_dropout,
            seed=seed,
        )

    return RatingFeeds(
        in_memory(fit_rows, float(s["id_dropout"])),
        in_memory(val, 0.0) if n_val > 0 else None,
        float(train.rating[fit_rows].mean()),
    )
