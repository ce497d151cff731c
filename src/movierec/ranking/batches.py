"""Which ratings each device trains on at each step: deterministic, resumable, shardable.

A *group* is up to ``ratings_per_user`` ratings of one user (the network sums that
user's history once and scores the group's movies against it); a *device batch* is
``groups_per_device`` groups; a *step* gives one device batch to every device of
every process. Everything an epoch does is a pure function of (seed, epoch), so a
run resumed at step ``s`` of epoch ``e`` sees exactly the batches it would have seen,
and every process can compute which ratings the others train on without talking.

- In memory (:class:`MemoryPlan`), every process groups all training ratings the same
  way; step ``s`` covers groups ``[s*B, (s+1)*B)`` (``B`` = groups per step over all
  devices) and device ``d`` takes the ``d``-th slice of them: the same global batch as
  one process with one device.
- Streamed (:class:`ShardPlan`), each epoch orders the encoded shards at random and
  deals them out to the processes in turn (process ``p`` reads shards ``p, p + P, ...``
  of that order and no other); each process cuts its shards' groups into device batches.
  Processes with fewer batches pad their last steps with empty ones (weight 0), so all
  take the same number of steps, as the collectives need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from movierec.data.histories import Histories, positions_in_runs
from movierec.data.shards import EncodedShard

#: Source key of the in-memory arrays (shards are keyed by their number).
MEMORY = -1


def make_groups(user: np.ndarray, ratings_per_user: int, rng: np.random.Generator) -> np.ndarray:
    """(groups, k) rating positions (-1 = padding): each user's ratings in random order
    cut into groups of ``k``, the groups in random order."""
    user = np.asarray(user)
    n, k = len(user), ratings_per_user
    if n == 0:
        return np.zeros((0, k), np.int64)
    order = rng.permutation(n)
    order = order[np.argsort(user[order], kind="stable")]
    users = user[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    position = positions_in_runs(np.diff(np.r_[starts, n]))
    new_group = (position % k) == 0
    group_of = np.cumsum(new_group) - 1
    groups = np.full((int(new_group.sum()), k), -1, np.int64)
    groups[group_of, position % k] = order
    return groups[rng.permutation(len(groups))]


def count_groups(user: np.ndarray, ratings_per_user: int) -> int:
    """How many groups :func:`make_groups` makes, without making them."""
    counts = np.bincount(np.asarray(user))
    return int(np.sum(-(-counts // ratings_per_user)))


@dataclass(frozen=True)
class Arrays:
    """user, movie (int32 indices) and rating of the ratings a plan groups."""

    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray


class BatchBuilder:
    """Turns groups into the network's inputs, targets and sample weights.

    With ``sparse_users`` the batch also carries the rows it touches: ``rows``, the
    distinct user indices (row 0 first, padded with 0 to ``groups + 1``), and
    ``movie_rows``, the distinct movie indices of its histories and targets (row 0
    first, padded with 0 to :func:`movie_rows_size`); ``user``, ``history`` and
    ``movie`` become positions in them. The trainer then gathers and updates only
    those rows of the user and movie tables (``num_movies`` is required then).
    """

    def __init__(
        self,
        histories: Histories,
        history_length: int,
        ratings_per_user: int,
        *,
        id_dropout: float = 0.0,
        sparse_users: bool = False,
        num_movies: int | None = None,
    ):
        if sparse_users and not num_movies:
            raise ValueError("row-sparse batches need the number of movies")
        self.histories = histories
        self.history_length = history_length
        self.k = ratings_per_user
        self.id_dropout = id_dropout
        self.sparse_users = sparse_users
        self.num_movies = num_movies

    def build(
        self, arrays: Arrays, groups: np.ndarray, size: int, rng: np.random.Generator | None
    ) -> dict[str, np.ndarray]:
        """One device batch of ``size`` groups (missing groups are padding, weight 0).

        Args:
            arrays: The ratings that ``groups`` point into.
            groups: ``(groups, ratings_per_user)`` positions in ``arrays`` (-1 pads),
                at most ``size`` rows.
            size: Groups per batch; fewer ``groups`` are padded up to it so every
                batch has one shape.
            rng: Draws the id-dropout; ``None`` drops no ids (evaluation).

        Returns:
            The network's inputs by name (``user``, ``history``, ``history_rating``,
            ``slot``, ``movie``), ``target`` stars and ``weight`` (0 for padding),
            plus ``rows`` and ``movie_rows`` when ``sparse_users`` is on.
        """
        k = self.k
        if len(groups) < size:  # keep one batch shape: a single compiled step
            groups = np.vstack([groups, np.full((size - len(groups), k), -1, np.int64)])
        pairs = groups.reshape(-1)
        valid = pairs >= 0
        pairs = np.where(valid, pairs, 0)
        first = groups[:, 0]
        user = np.where(first >= 0, np.asarray(arrays.user)[np.maximum(first, 0)], 0)
        query_user = user
        if self.id_dropout > 0 and rng is not None:
            query_user = np.where(rng.random(size) < self.id_dropout, 0, user)
        history, history_rating = self.histories.padded(user, self.history_length)
        batch = {
            "user": query_user.astype(np.int32),
            "history": history,
            "history_rating": history_rating,
            "slot": np.repeat(np.arange(size, dtype=np.int32), k),
            "movie": np.where(valid, np.asarray(arrays.movie)[pairs], 0).astype(np.int32),
            "target": np.where(valid, np.asarray(arrays.rating)[pairs], 0.0).astype(np.float32),
            "weight": valid.astype(np.float32),
        }
        if self.sparse_users:
            rows, position = np.unique(np.r_[0, query_user], return_inverse=True)
            batch["user"] = position[1:].astype(np.int32)
            batch["rows"] = np.pad(rows, (0, size + 1 - len(rows))).astype(np.int32)
            assert self.num_movies is not None
            used = np.zeros(self.num_movies, bool)
            used[0] = True
            used[batch["history"]] = True
            used[batch["movie"]] = True
            movie_rows = np.flatnonzero(used).astype(np.int32)
            position = (np.cumsum(used) - 1).astype(np.int32)
            batch["history"] = position[batch["history"]]
            batch["movie"] = position[batch["movie"]]
            size = movie_rows_size(len(movie_rows), self.num_movies)
            batch["movie_rows"] = np.pad(movie_rows, (0, size - len(movie_rows)))
        return batch


def movie_rows_size(distinct: int, num_movies: int) -> int:
    """Rows a batch's compact movie tables get: a power of two (at least 1024, at most
    the whole table), so that batches of many sizes share a few compiled steps."""
    return min(max(1024, 1 << max(distinct - 1, 0).bit_length()), num_movies)


def pad_movie_rows(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """``batch`` (stacked by device) with ``movie_rows`` padded with row 0 to ``size``."""
    rows = batch.get("movie_rows")
    if rows is None or rows.shape[-1] == size:
        return batch
    width = [(0, 0)] * (rows.ndim - 1) + [(0, size - rows.shape[-1])]
    return {**batch, "movie_rows": np.pad(rows, width)}


class MemoryPlan:
    """Steps over in-memory ratings; see the module doc."""

    def __init__(
        self,
        arrays: Arrays,
        *,
        ratings_per_user: int,
        groups_per_device: int,
        devices: int,
        first_device: int,
        local_devices: int,
        seed: int,
    ):
        self.arrays = arrays
        self.k = ratings_per_user
        self.size = groups_per_device
        self.devices = devices
        self.first_device = first_device
        self.local_devices = local_devices
        self.seed = seed
        self.total_groups = count_groups(arrays.user, ratings_per_user) if len(arrays.user) else 0
        self._epoch: tuple[int, np.ndarray] | None = None

    @property
    def ratings(self) -> int:
        """Ratings one epoch trains on, over all processes."""
        return len(self.arrays.user)

    def steps(self, epoch: int) -> int:
        """Steps in an epoch (the same every epoch in memory)."""
        return -(-self.total_groups // (self.size * self.devices))

    def groups(self, epoch: int) -> np.ndarray:
        """All of the epoch's groups, in the epoch's order (made once per epoch)."""
        if self._epoch is None or self._epoch[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch = (epoch, make_groups(self.arrays.user, self.k, rng))
        return self._epoch[1]

    def step_groups(self, epoch: int, step: int) -> list[tuple[int, np.ndarray]]:
        """(source, groups) for each of this process's devices at ``step``."""
        groups, out = self.groups(epoch), []
        for local in range(self.local_devices):
            begin = (step * self.devices + self.first_device + local) * self.size
            out.append((MEMORY, groups[begin : begin + self.size]))
        return out

    def source(self, key: int) -> Arrays:
        """The ratings a group of source ``key`` points into: always the in-memory ones."""
        return self.arrays


class ShardPlan:
    """Steps over encoded shards, dealt out to processes; see the module doc."""

    def __init__(
        self,
        shards: Sequence[EncodedShard],
        *,
        ratings_per_user: int,
        groups_per_device: int,
        process_index: int,
        process_count: int,
        local_devices: int,
        seed: int,
    ):
        self.shards = list(shards)
        self.k = ratings_per_user
        self.size = groups_per_device
        self.process_index = process_index
        self.process_count = process_count
        self.local_devices = local_devices
        self.seed = seed
        self.group_counts = np.array(
            [count_groups(s.arrays()["user"], self.k) if s.rows else 0 for s in self.shards],
            np.int64,
        )
        self.batch_counts = -(-self.group_counts // self.size)
        self._layout: tuple[int, list[np.ndarray]] | None = None
        self._loaded: dict[int, tuple[int, Arrays, np.ndarray]] = {}

    @property
    def ratings(self) -> int:
        """Ratings one epoch trains on, over all processes (every shard's rows)."""
        return sum(s.rows for s in self.shards)

    def assignment(self, epoch: int) -> list[np.ndarray]:
        """Each process's shards, in the order it reads them this epoch."""
        if self._layout is None or self._layout[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
            self._layout = (
                epoch,
                [order[p :: self.process_count] for p in range(self.process_count)],
            )
        return self._layout[1]

    def steps(self, epoch: int) -> int:
        """Steps in the epoch: what the process with the most device batches needs."""
        most = max(int(self.batch_counts[shards].sum()) for shards in self.assignment(epoch))
        return -(-most // self.local_devices)

    def step_groups(self, epoch: int, step: int) -> list[tuple[int, np.ndarray]]:
        """(shard, groups) for each of this process's devices at ``step``; a device
        past this process's last batch gets no groups (source :data:`MEMORY`)."""
        mine = self.assignment(epoch)[self.process_index]
        ends = np.cumsum(self.batch_counts[mine])
        out = []
        for local in range(self.local_devices):
            j = step * self.local_devices + local
            position = int(np.searchsorted(ends, j, side="right"))
            if position >= len(mine):
                out.append((MEMORY, np.zeros((0, self.k), np.int64)))
                continue
            shard = int(mine[position])
            within = j - int(ends[position] - self.batch_counts[shard])
            groups = self._groups(epoch, shard)
            out.append((shard, groups[within * self.size : (within + 1) * self.size]))
        return out

    def _groups(self, epoch: int, shard: int) -> np.ndarray:
        """The shard's groups this epoch; at most two shards are held (a step's devices
        may straddle a shard boundary)."""
        if shard not in self._loaded or self._loaded[shard][0] != epoch:
            a = self.shards[shard].arrays()
            arrays = Arrays(np.asarray(a["user"]), np.asarray(a["movie"]), np.asarray(a["rating"]))
            groups = make_groups(
                arrays.user, self.k, np.random.default_rng([self.seed, epoch, shard])
            )
            self._loaded.pop(shard, None)
            while len(self._loaded) >= 2:
                del self._loaded[next(iter(self._loaded))]
            self._loaded[shard] = (epoch, arrays, groups)
        return self._loaded[shard][2]

    def source(self, key: int) -> Arrays:
        """The ratings of shard ``key`` (loaded by :meth:`step_groups`); a one-row
        placeholder for :data:`MEMORY`, the source of empty padding batches."""
        if key == MEMORY:
            return Arrays(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.float32))
        return self._loaded[key][1]


Plan = MemoryPlan | ShardPlan


def step_batches(
    plan: Plan, builder: BatchBuilder, epoch: int, step: int, seed: int
) -> dict[str, np.ndarray]:
    """This process's device batches at ``step``, stacked on a leading device axis.

    id-dropout draws from a generator keyed by (seed, epoch, step, device), so a resumed
    run hides the same ids as an uninterrupted one.

    Args:
        plan: Which groups each device takes at each step.
        builder: Turns groups into network inputs.
        epoch: Epoch number (the plan's order depends on it).
        step: Step within the epoch.
        seed: Seed of the id-dropout draws.

    Returns:
        Each batch entry of :meth:`BatchBuilder.build`, with a leading axis of this
        process's local devices.
    """
    parts = []
    for local, (key, groups) in enumerate(plan.step_groups(epoch, step)):
        rng = np.random.default_rng([seed, epoch, step, local, 1])
        parts.append(builder.build(plan.source(key), groups, plan.size, rng))
    if "movie_rows" in parts[0]:  # one shape for all devices: the largest
        size = max(len(p["movie_rows"]) for p in parts)
        parts = [pad_movie_rows(p, size) for p in parts]
    return {name: np.stack([p[name] for p in parts]) for name in parts[0]}


def evaluation_batches(
    sources: Iterable[Arrays], builder: BatchBuilder, size: int, seed: int
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``size`` groups over every rating of ``sources`` (no dropout, full ids).

    Args:
        sources: Rating arrays to evaluate on, each grouped on its own.
        builder: Turns groups into network inputs (normally one without id-dropout).
        size: Groups per batch.
        seed: Seeds the grouping, so repeated evaluations see the same batches.

    Yields:
        One batch at a time, as :meth:`BatchBuilder.build` makes it.
    """
    for number, arrays in enumerate(sources):
        groups = make_groups(arrays.user, builder.k, np.random.default_rng([seed, number, 2]))
        for begin in range(0, len(groups), size):
            yield builder.build(arrays, groups[begin : begin + size], size, None)
