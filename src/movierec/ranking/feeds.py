"""What the dcn ranker is fed: training batches, and prediction queries deduplicated.

Training batches come from memory or stream from encoded Parquet shards
(:mod:`movierec.ranking.batches`); :func:`rating_feeds` builds either from the
training set it is given (one implementation per kind of set, no flag to test).

The network sums each query's history once and scores several movies against it
(``slot`` maps a pair to its query row). Gathering a history per *pair* instead
costs many times more on CPU (XLA's scatter-add in the backward pass; see
``benchmarks/NOTES.md``), so training batches group a few ratings of the same user,
and predictions deduplicate queries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from movierec.data.histories import Histories
from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch
from movierec.ranking.batches import Arrays, BatchBuilder, MemoryPlan, Plan, ShardPlan
from movierec.ranking.trainer import Feeds


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

    Args:
        train: An in-memory :class:`TrainingSet` or an open :class:`ShardedTrainingSet`.
        settings: The ranker's settings (``users_per_batch``, ``ratings_per_user``,
            ``history_length``, ``validation_fraction``, ``id_dropout``,
            ``sparse_updates``).
        seed: Seeds the validation hold-out, the grouping and the epoch order.
        devices: Devices training in memory, over all processes.
        first_device: Global position of this process's first device (in memory).
        local_devices: This process's devices.
        process_index: This process's index (streamed: which shards it reads).
        process_count: Number of processes (streamed).

    Returns:
        The :class:`Feeds`: batch plan, builders, validation batches (if any) and the
        mean training rating.

    Raises:
        ModelError: ``users_per_batch`` does not split over ``devices``, or a
            sharded set has no training ratings.
        TypeError: ``train`` is neither kind of training set.
    """
    s = settings
    per_step = int(s["users_per_batch"])
    if per_step % devices:
        raise ModelError(
            f"users_per_batch {per_step} does not split over {devices} devices; "
            f"use a multiple of {devices}"
        )
    k, length = int(s["ratings_per_user"]), int(s["history_length"])
    layout = _Layout(
        common={
            "ratings_per_user": k,
            "groups_per_device": per_step // devices,
            "local_devices": local_devices,
            "seed": seed,
        },
        devices=devices,
        first_device=first_device,
        process_index=process_index,
        process_count=process_count,
    )
    parts = _training_parts(train, float(s["validation_fraction"]), seed, layout)
    builder = BatchBuilder(
        parts.histories,
        length,
        k,
        id_dropout=float(s["id_dropout"]),
        sparse_users=bool(s["sparse_updates"]),
        num_movies=train.movies.size,
    )
    plain = BatchBuilder(parts.histories, length, k) if parts.validation is not None else None
    return Feeds(parts.plan, builder, parts.validation, plain, parts.mean)


@dataclass(frozen=True)
class _Layout:
    """How batches are spread: the plan options both kinds of training set take
    (``common``), and those of one kind only."""

    common: dict[str, Any]
    devices: int
    first_device: int
    process_index: int
    process_count: int


@dataclass(frozen=True)
class _Parts:
    """A training set split into what the network fits and what it validates on."""

    plan: Plan
    histories: Histories
    validation: Callable[[], Iterable[Arrays]] | None
    mean: float


@functools.singledispatch
def _training_parts(train: Any, validation_fraction: float, seed: int, layout: _Layout) -> _Parts:
    """The fit / validation parts of a training set (one implementation per kind)."""
    raise TypeError(f"cannot train the dcn ranker on a {type(train).__name__}")


@_training_parts.register
def _(train: TrainingSet, validation_fraction: float, seed: int, layout: _Layout) -> _Parts:
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = int(round(len(train) * validation_fraction))
    val, fit_rows = order[:n_val], order[n_val:]
    fit = _rows(train, fit_rows)
    histories = Histories.from_ratings(fit.user, fit.movie, fit.rating, train.users.size)
    plan = MemoryPlan(
        fit, devices=layout.devices, first_device=layout.first_device, **layout.common
    )
    validation = (lambda: [_rows(train, val)]) if n_val > 0 else None
    return _Parts(plan, histories, validation, float(fit.rating.mean()))


@_training_parts.register
def _(train: ShardedTrainingSet, validation_fraction: float, seed: int, layout: _Layout) -> _Parts:
    """The sharded set's own hash split decides validation (``validation_fraction`` unused)."""
    if not train.count("train"):
        raise ModelError("the sharded training set has no training ratings")
    plan = ShardPlan(
        train.parts["train"],
        process_index=layout.process_index,
        process_count=layout.process_count,
        **layout.common,
    )
    validation = None
    if train.count("validation"):

        def validation() -> Iterator[Arrays]:
            for shard in train.parts["validation"]:
                if shard.rows:
                    a = shard.arrays()
                    yield Arrays(*(np.asarray(a[key]) for key in ("user", "movie", "rating")))

    return _Parts(plan, train.histories("train"), validation, train.mean_rating("train"))


def _rows(train: TrainingSet, which: np.ndarray) -> Arrays:
    return Arrays(train.user_index[which], train.movie_index[which], train.rating[which])
