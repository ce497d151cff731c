"""In-memory training batches of the two-tower: one example per user (full softmax) or
per rating (in-batch negatives), with each history thinned afresh every epoch."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from movierec.data.histories import pad_lists, positions_in_runs
from movierec.data.training import TrainingSet
from movierec.models.base import QueryBatch
from movierec.models.inference import bucket
from movierec.retrieval.two_tower_network import rating_weight


class UserExamples(keras.utils.PyDataset):
    """Fresh random thinning of every history each epoch (the denoising that makes it work).

    Inputs and targets are id lists padded to a power of two per batch, so memory per
    batch follows the longest history in it and JAX compiles only a few step shapes.
    """

    def __init__(self, train: TrainingSet, settings: dict[str, Any], rng: np.random.Generator):
        import jax

        super().__init__()
        self.process, self.processes = jax.process_index(), jax.process_count()
        self.settings = settings
        self.rng = rng
        self.by_user = train.by_user
        self.histories, self.ratings = _user_rows(train)
        self.users = np.flatnonzero([len(h) > 0 for h in self.histories]).astype(np.int32)
        counts = np.bincount(train.movie_index, minlength=train.movies.size).astype(np.float64)
        self.probability = (counts / max(counts.sum(), 1.0)).astype(np.float32)
        self.batch_size = int(settings["batch_size"])
        self._plan()

    def _plan(self) -> None:
        if self.settings["negatives"] == "full":
            self.order = self.rng.permutation(self.users)[:, None]
        else:  # one (user, position of the target in their history) pair per rating
            lengths = np.array([len(h) for h in self.histories])
            owners = np.repeat(np.arange(len(self.histories)), lengths)
            positions = positions_in_runs(lengths)
            pairs = np.stack([owners, positions], axis=1).astype(np.int64)
            self.order = pairs[self.rng.permutation(len(pairs))]

    def __len__(self) -> int:
        return int(np.ceil(len(self.order) / self.batch_size))

    def on_epoch_end(self) -> None:
        self._plan()

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        # Several processes (Keras DataParallel): each draws the whole batch, as one process
        # would, and feeds its own slice of the rows; Keras joins the slices.
        inputs = self._global_batch(i)
        if self.processes == 1:
            return inputs
        share = self.batch_size // self.processes
        return {k: v[self.process * share : (self.process + 1) * share] for k, v in inputs.items()}

    def _global_batch(self, i: int) -> dict[str, np.ndarray]:
        # Every batch has the same size (the last one wraps around) so JAX compiles one step.
        rows = np.arange(i * self.batch_size, (i + 1) * self.batch_size) % len(self.order)
        chunk = self.order[rows]
        users = chunk[:, 0].astype(np.int32)
        kept_ids, kept_weights = [], []
        for row, u in enumerate(users):
            keep = self.rng.random(len(self.histories[u])) >= self.settings["history_dropout"]
            if chunk.shape[1] > 1:  # the target itself is never part of the input
                keep[chunk[row, 1]] = False
            weight = rating_weight(self.ratings[u], self.settings["rating_weighting"])
            kept_ids.append(self.histories[u][keep])
            kept_weights.append(weight[keep])
        width = bucket(max(len(k) for k in kept_ids), minimum=8)
        history, history_weight = pad_lists(kept_ids, kept_weights, len(users), width)
        id_kept = self.rng.random(len(users)) >= self.settings["user_id_dropout"]
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
