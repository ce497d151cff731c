"""Two-tower training streamed from Parquet shards: ``movierec train retrieval --stream``.

What the in-memory fit needs a rating table for, this builds from a
:class:`~movierec.data.shards.ShardedTrainingSet` read one shard at a time:

- every user's training movies as compressed rows (:class:`~movierec.data.histories.Histories`,
  8 bytes a rating), and their timestamps in the same order when the item-item path
  weights co-ratings by session (4 more bytes a rating, kept to about a minute);
- the item-item path (:func:`~movierec.retrieval.item_item.fit_item_item_runs`): the
  sparse users x movies matrix built from those rows, multiplied by thin blocks a slice
  of users at a time, so the Gram matrix (movies x movies) is never formed;
- the deep towers, trained on batches of users. The in-memory fit scores every user
  against the whole catalogue (a full softmax); at 100K movies that is most of the cost
  of a step. Here each user's targets are up to :data:`TARGETS_PER_USER` of their
  movies, and the softmax runs over the batch's targets (a sampled softmax, corrected
  by each movie's sampling probability, ``log Q``), so a step costs what its users and
  their targets hold, not the catalogue.

The query reads up to :data:`MAX_HISTORY` of the (thinned) history's latest movies in
training, so memory per batch grows with history length up to that cap, never with the
catalogue. The per-user id embedding is not trained here (``use_user_id`` must stay
off): a million-row table updated densely at every step would cost what the table
costs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from movierec.data.features import build_feature_tables
from movierec.data.histories import Histories, positions_in_runs
from movierec.errors import ModelError
from movierec.models.inference import bucket
from movierec.progress import Measure, keras_progress, logger, model_label
from movierec.retrieval.item_item import fit_item_item_runs
from movierec.retrieval.two_tower_examples import SeededBatches
from movierec.retrieval.two_tower_network import (
    NEG_INF,
    TwoTowerModel,
    rating_weight,
    track_per_movie,
    training_optimizer,
)
from movierec.retrieval.two_tower_resume import run_fingerprint, train_epochs

if TYPE_CHECKING:
    from movierec.data.shards import ShardedTrainingSet
    from movierec.models.checkpoints import Checkpoints, Resume
    from movierec.retrieval.two_tower import TwoTowerRetriever

#: Target movies drawn from each user's history per step (all of them when fewer).
TARGETS_PER_USER = 8
#: Latest kept history movies the query reads in training.
MAX_HISTORY = 256
#: Batches whose users are sorted by history length together (see UserBatches).
SORTED_BATCHES = 64
#: What the streamed fit's progress lines show: the loss per target movie.
PER_TARGET = Measure(
    "loss_per_movie", "loss", "(cross-entropy per target movie, against the batch's targets)"
)


@keras.saving.register_keras_serializable(package="movierec")
class SampledTwoTower(TwoTowerModel):
    """The two-tower network with a sampled-softmax loss (training only).

    ``inputs["candidate"]`` holds the batch's distinct target movies (0 = padding),
    ``inputs["candidate_probability"]`` how likely each was to be drawn, and
    ``inputs["target"]`` (B, T) each user's targets as columns of ``candidate`` (-1:
    none). The weights are those of :class:`TwoTowerModel`, copied into one after
    training, which is what is saved.
    """

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        query = self.query(inputs, training, linear=False) / self.temperature
        candidate = ops.cast(inputs["candidate"], "int32")
        logits = ops.matmul(query, ops.transpose(self.candidates(candidate, linear=False)))
        logits = logits - ops.log(inputs["candidate_probability"])[None, :]
        return ops.where(candidate[None, :] > 0, logits, NEG_INF)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Each user's targets' log-likelihood under the softmax over the batch's
        candidates (the multinomial likelihood of the full fit, sampled); plus any
        regularisation."""
        log_probability = y_pred - ops.logsumexp(y_pred, axis=1, keepdims=True)
        target = ops.cast(x["target"], "int32")
        picked = ops.take_along_axis(log_probability, ops.maximum(target, 0), axis=1)
        mask = ops.cast(target >= 0, "float32")
        loss = -ops.mean(ops.sum(picked * mask, axis=1))
        track_per_movie(self.loss_per_movie, picked, mask)
        return loss + keras.Model.compute_loss(self, x, y, y_pred, sample_weight, training)


class UserBatches(SeededBatches):
    """Batches of users from compressed histories, freshly thinned and sampled each epoch.

    Every batch has ``batch_size`` users (the last wraps around) and its arrays are
    padded to powers of two, so JAX compiles only a few step shapes. Each batch is a
    function of (seed, epoch, step), so a resumed run draws an uninterrupted one's.
    """

    def __init__(
        self,
        histories: Histories,
        settings: dict[str, Any],
        probability: np.ndarray,
        seed: int,
    ):
        super().__init__()
        self.histories = histories
        self.settings = settings
        self.probability = probability
        self.seed = int(seed)
        self.lengths = np.diff(histories.offsets)
        self.users = np.flatnonzero(self.lengths > 0).astype(np.int32)
        self.batch_size = int(settings["batch_size"])
        self.examples = len(self.users)
        self._order: tuple[int, np.ndarray] | None = None

    def order(self) -> np.ndarray:
        """This epoch's users in a random order, then sorted by history length within
        runs of :data:`SORTED_BATCHES` batches and those batches shuffled: a batch's
        users have similar lengths, so padding to its longest history wastes little."""
        if self._order is not None and self._order[0] == self.epoch:
            return self._order[1]
        rng = self.rng(0)
        order = rng.permutation(self.users)
        run = self.batch_size * SORTED_BATCHES
        for start in range(0, len(order), run):
            part = order[start : start + run]
            order[start : start + run] = part[np.argsort(self.lengths[part], kind="stable")]
        starts = rng.permutation(np.arange(0, len(order), self.batch_size))
        order = np.concatenate([order[i : i + self.batch_size] for i in starts])
        self._order = (self.epoch, order)
        return order

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        step = self.first_step + i
        order = self.order()
        rng = self.rng(1, step)
        rows = np.arange(step * self.batch_size, (step + 1) * self.batch_size) % len(order)
        users = order[rows]
        lengths = self.lengths[users]
        row_of = np.repeat(np.arange(len(users)), lengths)  # each rating's row in the batch
        place = np.repeat(self.histories.offsets[users], lengths) + positions_in_runs(lengths)
        movies = self.histories.movies[place]
        # Input: the thinned history, its latest MAX_HISTORY kept movies.
        keep = rng.random(len(place)) >= float(self.settings["history_dropout"])
        kept_rows = row_of[keep]
        kept_counts = np.bincount(kept_rows, minlength=len(users))
        column = positions_in_runs(kept_counts) - np.repeat(
            np.maximum(kept_counts - MAX_HISTORY, 0), kept_counts
        )
        inside = column >= 0
        width = bucket(int(min(kept_counts.max(initial=0), MAX_HISTORY)), minimum=8)
        history = np.zeros((len(users), width), np.int32)
        weight = np.zeros((len(users), width), np.float32)
        history[kept_rows[inside], column[inside]] = movies[keep][inside]
        stars = rating_weight(self.histories.ratings[place], self.settings["rating_weighting"])
        weight[kept_rows[inside], column[inside]] = stars[keep][inside]
        # Targets: up to TARGETS_PER_USER of each user's movies, drawn at random.
        order = np.lexsort((rng.random(len(place)), row_of))
        drawn = order[positions_in_runs(lengths) < TARGETS_PER_USER]
        candidate, column_of = np.unique(movies[drawn], return_inverse=True)
        target = np.full((len(users), TARGETS_PER_USER), -1, np.int32)
        target[row_of[drawn], positions_in_runs(np.minimum(lengths, TARGETS_PER_USER))] = (
            column_of.reshape(-1)
        )
        size = bucket(len(candidate), minimum=256)
        candidates = np.zeros(size, np.int32)
        candidates[: len(candidate)] = candidate
        probability = np.ones(size, np.float32)  # padding: masked out, log 1 = 0
        probability[: len(candidate)] = self.probability[candidate]
        return {
            "user": users,
            "user_id": np.zeros_like(users),
            "history": history,
            "history_weight": weight,
            "candidate": candidates,
            "candidate_probability": probability,
            "target": target,
        }


def session_times(train: ShardedTrainingSet) -> np.ndarray:
    """Every training rating's timestamp (seconds since the earliest, float32: about a
    minute's precision over decades), in the order of ``train.histories()``."""
    first = min(
        (
            int(shard.arrays()["timestamp"].min())
            for part in ("train", "validation")
            for shard in train.parts[part]
            if shard.rows
        ),
        default=0,
    )

    def chunks():
        """(user, movie, time) of each training and validation shard, in shard order."""
        for part in ("train", "validation"):
            for shard in train.parts[part]:
                a = shard.arrays()
                yield a["user"], a["movie"], (np.asarray(a["timestamp"]) - first).astype(np.float32)

    return Histories.from_chunks(chunks, train.users.size).ratings


def fit_streamed(
    retriever: TwoTowerRetriever, train: ShardedTrainingSet, verbose: int = 1, options: Any = None
) -> dict[str, list[float]]:
    """Fit ``retriever`` from ``train``'s shards; see the module doc. ``options``
    (:class:`~movierec.ranking.trainer.TrainOptions`) may checkpoint and resume the
    deep towers' training (:mod:`movierec.retrieval.two_tower_resume`); the item-item
    path is fitted again on resume (closed form: the same tables)."""
    s = retriever.settings
    if len(train) == 0:
        raise ModelError("two-tower: the training set has no ratings")
    if s["use_user_id"]:
        raise ModelError(
            "two-tower: use_user_id trains a per-user table densely; streamed training "
            "(--stream) runs without it (--set use_user_id=false)"
        )
    keras.utils.set_random_seed(int(s["seed"]))
    started = time.perf_counter()
    result: dict[str, list[float]] = {}
    histories = train.histories()
    result["histories_seconds"] = [time.perf_counter() - started]
    result["train_ratings"] = [float(len(histories.movies))]
    fingerprint = run_fingerprint(
        retriever.name,
        s,
        train.users.size,
        train.movies.size,
        [histories.offsets, histories.movies, histories.ratings],
    )
    checkpoints, resume = retriever.open_checkpoints(fingerprint, options)
    tables = build_feature_tables(train)
    model = retriever._new_model(train, tables)
    model.set_feature_tables(tables)
    if model.item_item_rank:
        begun = time.perf_counter()
        window = float(s["item_item_session_seconds"])
        far = float(s["item_item_far_weight"])
        times = session_times(train) if window > 0 and far < 1 else None
        found = fit_item_item_runs(
            histories,
            times,
            train.movies.size,
            rank=model.item_item_rank,
            window_seconds=window,
            far_weight=far,
            seed=int(s["seed"]),
            l2=None if s["item_item_lambda"] is None else float(s["item_item_lambda"]),
        )
        asked = times is not None
        del times
        model.item_query_table.assign(found.query_table)
        model.item_candidate_table.assign(found.candidate_table)
        del found.query_table, found.candidate_table
        result["item_item_lambda"] = [found.l2]
        result["item_item_session_weighted"] = [float(found.session_weighted)]
        result["item_item_seconds"] = [time.perf_counter() - begun]
        if verbose:
            logger.info(
                "%s: item-item path fitted in %.0f s (lambda %g%s)",
                model_label(retriever),
                result["item_item_seconds"][0],
                found.l2,
                "; too many near pairs for session weighting: plain EASE"
                if asked and not found.session_weighted
                else "",
            )
    begun = time.perf_counter()
    deep = _train_deep(
        model,
        histories,
        s,
        train.movies.size,
        verbose,
        model_label(retriever),
        checkpoints=checkpoints,
        every=int(getattr(options, "checkpoint_steps", 0) or 0),
        resume=resume,
    )
    result.update(deep)
    result["deep_seconds"] = [time.perf_counter() - begun]
    retriever.network, retriever.train, retriever._tables = model, None, tables
    retriever._candidates = None
    retriever._set_path_scales(histories)
    if model.item_item_rank:
        result["item_item_scale"] = [float(model.item_scale.numpy())]
    result["seconds"] = [time.perf_counter() - started]
    return result


def _train_deep(
    model: TwoTowerModel,
    histories: Histories,
    s: dict[str, Any],
    num_movies: int,
    verbose: int,
    label: str = "retrieval 'two-tower'",
    *,
    checkpoints: Checkpoints | None = None,
    every: int = 0,
    resume: tuple[Resume, dict[str, np.ndarray]] | None = None,
) -> dict[str, list[float]]:
    """Train the deep towers of ``model`` (in place) with the sampled softmax; with
    ``verbose``, one progress line per epoch named ``label``; ``checkpoints``, ``every``
    and ``resume`` as :func:`~movierec.retrieval.two_tower_resume.train_epochs` takes them."""
    counts = np.bincount(histories.movies, minlength=num_movies).astype(np.float64)
    # How likely a movie is to be among a batch's targets: its share of the ratings.
    probability = np.maximum(counts / max(counts.sum(), 1.0), 1e-12).astype(np.float32)
    batches = UserBatches(histories, s, probability, int(s["seed"]))
    config = {**model.get_config(), "item_item_rank": 0}
    twin = SampledTwoTower.from_config(config)
    _copy_weights(model, twin)
    twin.user_embedding.trainable = False  # use_user_id is off: the table stays at zero
    passes = int(np.ceil(batches.examples / batches.batch_size))  # steps that see every user
    twin.compile(optimizer=training_optimizer(s, passes))
    epoch_seconds: list[float] = []
    timer = _EpochTimer(epoch_seconds)
    per_step = len(histories.movies) / max(passes, 1)
    result = train_epochs(
        twin,
        batches,
        epochs=int(s["epochs"]),
        callbacks=[timer, *keras_progress(label, [PER_TARGET], verbose, per_step)],
        checkpoints=checkpoints,
        every=every,
        resume=resume,
    )
    _copy_weights(twin, model)
    result["epoch_seconds"] = epoch_seconds
    result["steps_per_epoch"] = [float(batches.steps())]
    result["steps_per_pass"] = [float(passes)]
    return result


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Assign every weight ``source`` shares with ``target`` (same layer and name)."""

    def key(model: keras.Model, path: str) -> str:
        """A weight's path without the model's own name, so both models' paths match."""
        return path.removeprefix(model.name + "/")

    found = {key(source, w.path): w for w in source.weights}
    for weight in target.weights:
        match = found.get(key(target, weight.path))
        if match is not None:
            weight.assign(match)


class _EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch, for the streaming benchmark."""

    def __init__(self, out: list[float]):
        super().__init__()
        self.out = out
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.out.append(time.perf_counter() - self.started)
