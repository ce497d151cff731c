"""What the dcn ranker is fed: histories as fixed-width arrays, batches sharing them.

Training batches come from memory or stream from encoded Parquet shards
(:mod:`movierec.ranking.batches`); :func:`rating_feeds` picks.

The network sums each query's history once and scores several movies against it
(``slot`` maps a pair to its query row). Gathering a history per *pair* instead
costs ~20x more on CPU (XLA's scatter-add in the backward pass), so training
batches group a few ratings of the same user, and predictions deduplicate queries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from movierec.data.histories import Histories
from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch
from movierec.ranking.batches import Arrays, BatchBuilder, MemoryPlan, Plan, ShardPlan
from movierec.ranking.trainer import Feeds


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


def rating_feeds(
    train: TrainingSet | ShardedTrainingSet,
    settings: dict[str, Any],
    seed: int,
    *,
    devices: int = 1,
    first_device: int = 0,
    local_devices: int = 1,
    process_index: int = 0,
    process_count: int = 1,
) -> Feeds:
    """What one rating network trains on, from memory or streamed from shards.

    In memory, a seeded ``validation_fraction`` of the ratings is held out; a sharded
    set brings its own validation part (chosen by its hash split). Histories hold only
    the ratings trained on, so validation looks like serving. ``users_per_batch`` is
    the batch over all ``devices``; each device takes an equal share.
    """
    s = settings
    per_step = int(s["users_per_batch"])
    if per_step % devices:
        raise ModelError(
            f"users_per_batch {per_step} does not split over {devices} devices; "
            f"use a multiple of {devices}"
        )
    k, length = int(s["ratings_per_user"]), int(s["history_length"])
    size = per_step // devices
    if train.streaming:
        histories = train.histories("train")
        if not train.count("train"):
            raise ModelError("the sharded training set has no training ratings")
        plan: Plan = ShardPlan(
            train.parts["train"],
            ratings_per_user=k,
            groups_per_device=size,
            process_index=process_index,
            process_count=process_count,
            local_devices=local_devices,
            seed=seed,
        )
        validation = None
        if train.count("validation"):

            def validation() -> Iterator[Arrays]:
                for shard in train.parts["validation"]:
                    if shard.rows:
                        a = shard.arrays()
                        yield Arrays(
                            np.asarray(a["user"]), np.asarray(a["movie"]), np.asarray(a["rating"])
                        )

        mean = train.mean_rating("train")
    else:
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = int(round(len(train) * float(s["validation_fraction"])))
        val, fit_rows = order[:n_val], order[n_val:]
        histories = Histories.from_ratings(
            train.user_index[fit_rows],
            train.movie_index[fit_rows],
            train.rating[fit_rows],
            train.users.size,
        )

        def rows(which: np.ndarray) -> Arrays:
            return Arrays(train.user_index[which], train.movie_index[which], train.rating[which])

        plan = MemoryPlan(
            rows(fit_rows),
            ratings_per_user=k,
            groups_per_device=size,
            devices=devices,
            first_device=first_device,
            local_devices=local_devices,
            seed=seed,
        )
        validation = (lambda: [rows(val)]) if n_val > 0 else None
        mean = float(train.rating[fit_rows].mean())
    builder = BatchBuilder(
        histories,
        length,
        k,
        id_dropout=float(s["id_dropout"]),
        sparse_users=bool(s["sparse_updates"]),
    )
    plain = BatchBuilder(histories, length, k) if validation is not None else None
    return Feeds(plan, builder, validation, plain, mean)
