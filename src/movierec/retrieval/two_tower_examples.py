"""In-memory training batches of the two-tower: one example per user (full softmax) or
per rating (in-batch negatives), with each history thinned afresh every epoch.

Every batch is a function of (seed, epoch, step) alone, as the dcn's batches are
(:mod:`movierec.ranking.batches`): a run resumed from a checkpoint at any step draws
the very batches an uninterrupted run would, whatever Keras prefetched or peeked at."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from movierec.data.histories import pad_lists, positions_in_runs
from movierec.data.training import TrainingSet
from movierec.models.base import QueryBatch
from movierec.models.inference import bucket
from movierec.retrieval.two_tower_network import rating_weight


class SeededBatches(keras.utils.PyDataset):
    """Batches that are a function of (seed, epoch, step) alone, in memory or streamed.

    A subclass sets ``seed``, ``batch_size``, ``examples`` (how many an epoch passes
    over) and ``settings`` (``steps_per_epoch`` may cut an epoch short), and draws
    batch ``i`` of :attr:`epoch` with :meth:`rng` ``(1, i)``. :class:`EpochFeed` sets
    the epoch as Keras begins it; :attr:`first_step` > 0 makes the dataset the rest of
    an epoch (a run resumed mid-epoch), so Keras's batch ``i`` is step
    ``first_step + i``.
    """

    seed: int
    batch_size: int
    examples: int
    settings: dict[str, Any]
    epoch: int = 0
    first_step: int = 0

    def rng(self, *stream: int) -> np.random.Generator:
        """A generator for ``stream`` of this epoch: (0,) shuffles, (1, step) thins."""
        return np.random.default_rng([self.seed, self.epoch, *stream])

    def steps(self) -> int:
        """Steps in one epoch: a pass over the examples, or ``steps_per_epoch``."""
        steps = int(np.ceil(self.examples / self.batch_size))
        limit = self.settings.get("steps_per_epoch")
        return min(steps, int(limit)) if limit else steps

    def __len__(self) -> int:
        return self.steps() - self.first_step


class UserExamples(SeededBatches):
    """Fresh random thinning of every history each epoch (the denoising that makes it work).

    Inputs and targets are id lists padded to a power of two per batch, so memory per
    batch follows the longest history in it and JAX compiles only a few step shapes.
    """

    def __init__(self, train: TrainingSet, settings: dict[str, Any], seed: int):
        import jax

        super().__init__()
        self.process, self.processes = jax.process_index(), jax.process_count()
        self.settings = settings
        self.seed = int(seed)
        self.by_user = train.by_user
        self.histories, self.ratings = _user_rows(train)
        self.users = np.flatnonzero([len(h) > 0 for h in self.histories]).astype(np.int32)
        counts = np.bincount(train.movie_index, minlength=train.movies.size).astype(np.float64)
        self.probability = (counts / max(counts.sum(), 1.0)).astype(np.float32)
        self.batch_size = int(settings["batch_size"])
        if settings["negatives"] == "full":
            self.examples = len(self.users)
        else:
            self.examples = int(sum(len(h) for h in self.histories))
        self._order: tuple[int, np.ndarray] | None = None

    def order(self) -> np.ndarray:
        """This epoch's examples in their shuffled order: users (full softmax) or
        (user, position of the target in their history) pairs, one per rating."""
        if self._order is not None and self._order[0] == self.epoch:
            return self._order[1]
        rng = self.rng(0)
        if self.settings["negatives"] == "full":
            order = rng.permutation(self.users)[:, None]
        else:
            lengths = np.array([len(h) for h in self.histories])
            owners = np.repeat(np.arange(len(self.histories)), lengths)
            positions = positions_in_runs(lengths)
            pairs = np.stack([owners, positions], axis=1).astype(np.int64)
            order = pairs[rng.permutation(len(pairs))]
        self._order = (self.epoch, order)
        return order

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        # Several processes (Keras DataParallel): each draws the whole batch, as one process
        # would, and feeds its own slice of the rows; Keras joins the slices.
        inputs = self._global_batch(self.first_step + i)
        if self.processes == 1:
            return inputs
        share = self.batch_size // self.processes
        return {k: v[self.process * share : (self.process + 1) * share] for k, v in inputs.items()}

    def _global_batch(self, i: int) -> dict[str, np.ndarray]:
        # Every batch has the same size (the last one wraps around) so JAX compiles one step.
        order = self.order()
        rows = np.arange(i * self.batch_size, (i + 1) * self.batch_size) % len(order)
        chunk = order[rows]
        rng = self.rng(1, i)
        users = chunk[:, 0].astype(np.int32)
        kept_ids, kept_weights = [], []
        for row, u in enumerate(users):
            keep = rng.random(len(self.histories[u])) >= self.settings["history_dropout"]
            if chunk.shape[1] > 1:  # the target itself is never part of the input
                keep[chunk[row, 1]] = False
            weight = rating_weight(self.ratings[u], self.settings["rating_weighting"])
            kept_ids.append(self.histories[u][keep])
            kept_weights.append(weight[keep])
        width = bucket(max(len(k) for k in kept_ids), minimum=8)
        history, history_weight = pad_lists(kept_ids, kept_weights, len(users), width)
        id_kept = rng.random(len(users)) >= self.settings["user_id_dropout"]
        inputs = {
            "user": users,
            "user_id": (users * id_kept).astype(np.int32),
            "history": history,
            "history_weight": history_weight,
        }
        if self.settings["negatives"] == "full":  # every movie the user rated is a target
            lengths = np.diff(self.by_user.offsets)[users]
            inputs["target"], _ = self.by_user.padded(users, bucket(int(lengths.max()), minimum=8))
            return inputs
        candidate = np.array([self.histories[u][p] for u, p in chunk], np.int32)
        inputs["candidate"] = candidate
        inputs["candidate_probability"] = self.probability[candidate]
        return inputs


def _user_rows(train: TrainingSet) -> tuple[list[np.ndarray], list[np.ndarray]]:
    queries = QueryBatch.from_training(train, np.arange(train.users.size, dtype=np.int32))
    return queries.histories, queries.history_ratings


class EpochFeed(keras.callbacks.Callback):
    """Tells :class:`SeededBatches` which epoch Keras is starting, before it draws a batch."""

    def __init__(self, examples: SeededBatches):
        super().__init__()
        self.examples = examples

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.examples.epoch = epoch
