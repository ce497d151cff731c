"""Two-tower retrieval that learns from what users chose, with a history-driven query tower.

Query tower: the (dropped-out) list of movies the user rated, pooled from an item
embedding table, plus the user's id and side features, through a hidden layer and a dense
one. Histories are id lists padded per batch, so a batch costs what its histories hold, not
the size of the catalogue. Because the history drives the query, a visitor with no trained
id but some ratings still gets a meaningful embedding (the id is also dropped in training
so that case is in distribution). Candidate tower: movie id + genres, year and title
words. Score = query · candidate + a per-movie bias (carried as an extra embedding
column, so any dot-product index serves it).

Both towers also carry frozen paths. An item-item path: low-rank EASE on a session-weighted Gram
matrix (:mod:`movierec.retrieval.item_item`). The query adds the sum of its history's
rows of a query table, the candidate its row of a candidate table, so the dot product
adds ``item_scale * EASE score`` and serving stays one dot product at any catalogue
size. The path is fitted in closed form (its ``lambda`` chosen on held-out training
ratings) and left out of the training loss: a deep part trained as a correction to a
linear model fitted on the same rows overfits, while the plain sum is an ensemble.
``item_scale`` is set after training so that the path's scores spread
``item_item_share`` times as much as the deep part's (both measured as the mean
per-user standard deviation over the catalogue on training users): a rule, so the
balance follows the data set instead of being tuned for one.

A popularity path adds what was popular when the user was last active
(:mod:`movierec.retrieval.recent_popularity`): the candidate carries its standardised
rating counts per time bucket, the query a one-hot of the bucket of the user's latest
rating, scaled to ``recent_popularity_weight`` times the deep part's spread.

Training follows Mult-DAE / YouTube-DNN rather than rating regression:

- ``negatives="full"`` (default): each example is a user whose history is randomly
  thinned; the target is the multinomial likelihood of all their movies under a
  softmax over the *whole* catalogue (cross-entropy on the query × all-candidates
  score matrix, gathered at the history's ids).
- ``negatives="in-batch"``: for very large catalogues, (thinned history, held-out
  movie) pairs scored against the other targets in the batch, with accidental hits
  removed and log-Q sampling-probability correction.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import keras
import keras_rs
import numpy as np
from keras import ops

from movierec.atomic import write_json
from movierec.data.features import FeatureTables, build_feature_tables
from movierec.data.histories import Histories, pad_lists, positions_in_runs
from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch, Retriever, unit_rows
from movierec.models.inference import CompiledInference, bucket, pad_rows
from movierec.retrieval.item_item import fit_item_item
from movierec.retrieval.recent_popularity import recent_popularity
from movierec.retrieval.two_tower_settings import TwoTowerSettings

FEATURES_FILE = "features.json"
_NEG_INF = -1e9
_USER_FEATURES = ("age", "gender", "occupation", "zip")


@keras.saving.register_keras_serializable(package="movierec")
class TwoTowerModel(keras.Model):
    """Both towers; ``call`` returns logits for the training loss of the chosen negatives mode.

    Feature tables live in non-trainable int32 weights so ``model.keras`` is self-contained.
    """

    def __init__(
        self,
        num_movies: int,
        num_users: int,
        feature_sizes: dict[str, int],
        embedding_dim: int = 256,
        feature_dim: int = 32,
        activation: str = "tanh",
        history_pooling: str = "sqrt",
        use_user_id: bool = True,
        use_user_features: bool = True,
        use_movie_features: bool = True,
        query_dropout: float = 0.0,
        l2: float = 0.0,
        negatives: str = "full",
        temperature: float = 1.0,
        item_item_rank: int = 0,
        hidden_dim: int = 0,
        time_buckets: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_movies = num_movies
        self.num_users = num_users
        self.feature_sizes = dict(feature_sizes)
        self.embedding_dim = embedding_dim
        self.feature_dim = feature_dim
        self.activation = activation
        self.history_pooling = history_pooling
        self.use_user_id = use_user_id
        self.use_user_features = use_user_features
        self.use_movie_features = use_movie_features
        self.query_dropout = query_dropout
        self.l2 = l2
        self.negatives = negatives
        self.temperature = temperature
        self.item_item_rank = item_item_rank
        self.hidden_dim = hidden_dim
        self.time_buckets = time_buckets
        reg = keras.regularizers.L2(l2) if l2 else None
        d, f = embedding_dim, feature_dim

        # Query tower.
        self.history_embedding = keras.layers.Embedding(
            num_movies, d, embeddings_regularizer=reg, name="history_embedding"
        )
        self.user_embedding = keras.layers.Embedding(num_users, f, name="user_embedding")
        self.user_feature_embeddings = {
            name: keras.layers.Embedding(feature_sizes[name], f, name=f"user_{name}")
            for name in _USER_FEATURES
        }
        self.query_dense = keras.layers.Dense(
            d, activation=activation, kernel_regularizer=reg, name="query_dense"
        )
        self.query_drop = keras.layers.Dropout(query_dropout)
        self.query_hidden = (
            keras.layers.Dense(hidden_dim, activation=activation, name="query_hidden")
            if hidden_dim
            else None
        )

        # Candidate tower.
        self.movie_embedding = keras.layers.Embedding(
            num_movies, d, embeddings_regularizer=reg, name="movie_embedding"
        )
        self.movie_bias = keras.layers.Embedding(
            num_movies, 1, embeddings_initializer="zeros", name="movie_bias"
        )
        self.genre_embedding = keras.layers.Embedding(feature_sizes["genre"], f, name="genre")
        self.year_embedding = keras.layers.Embedding(feature_sizes["year"], f, name="year")
        self.word_embedding = keras.layers.Embedding(feature_sizes["title_word"], f, name="word")
        self.movie_feature_dense = keras.layers.Dense(d, use_bias=False, name="movie_features")
        self.sampling_correction = keras_rs.layers.SamplingProbabilityCorrection()
        self._build_all()

    def _build_all(self) -> None:
        """Create every variable now, so ``load_model`` can restore weights without a call."""
        d, f = self.embedding_dim, self.feature_dim
        for layer in (
            self.history_embedding,
            self.user_embedding,
            self.movie_embedding,
            self.movie_bias,
            self.genre_embedding,
            self.year_embedding,
            self.word_embedding,
            *self.user_feature_embeddings.values(),
        ):
            layer.build((None,))
        if self.query_hidden is not None:
            self.query_hidden.build((None, d + 5 * f))
            self.query_dense.build((None, self.hidden_dim))
        else:
            self.query_dense.build((None, d + 5 * f))
        self.movie_feature_dense.build((None, 3 * f))
        n, u = self.num_movies, self.num_users
        table = dict(trainable=False, dtype="int32", initializer="zeros")
        self.genre_table = self.add_weight(shape=(n, _max_cols("genres")), name="genres", **table)
        self.year_table = self.add_weight(shape=(n,), name="year_table", **table)
        self.word_table = self.add_weight(shape=(n, _max_cols("words")), name="words", **table)
        self.user_tables = {
            name: self.add_weight(shape=(u,), name=f"user_{name}_table", **table)
            for name in _USER_FEATURES
        }
        if self.item_item_rank:
            # Low-rank EASE: a history's query-table rows summed, dotted with a candidate
            # row, is the EASE score (movierec.retrieval.item_item).
            frozen = dict(trainable=False, initializer="zeros")
            r = self.item_item_rank
            self.item_query_table = self.add_weight(shape=(n, r), name="item_query", **frozen)
            self.item_candidate_table = self.add_weight(
                shape=(n, r), name="item_candidate", **frozen
            )
            self.item_scale = self.add_weight(shape=(), name="item_scale", **frozen)
        if self.time_buckets:
            # Popular when the user was last active (movierec.retrieval.recent_popularity).
            frozen = dict(trainable=False, initializer="zeros")
            self.popularity_table = self.add_weight(
                shape=(n, self.time_buckets), name="popularity", **frozen
            )
            self.user_time_bucket = self.add_weight(
                shape=(u,), name="user_time_bucket", **table
            )
            self.popularity_scale = self.add_weight(shape=(), name="popularity_scale", **frozen)
        self.built = True

    def set_feature_tables(self, tables: FeatureTables) -> None:
        """Copy the encoded movie and user side features into the frozen lookup tables."""
        self.genre_table.assign(tables.movie["genres"])
        self.year_table.assign(tables.movie["year"])
        self.word_table.assign(tables.movie["title_words"])
        for name in _USER_FEATURES:
            self.user_tables[name].assign(tables.user[name])

    # -- towers --------------------------------------------------------------------------

    def query(self, inputs: dict[str, Any], training: bool = False, linear: bool = True) -> Any:
        """(B, d [+ rank] + 1) query embeddings; the last column is 1 and meets the bias.

        ``inputs["history"]`` holds (B, L) movie indices (0 = padding) and
        ``inputs["history_weight"]`` how much each counts (0 for padding).
        """
        ids = ops.cast(inputs["history"], "int32")
        weight = ops.cast(inputs["history_weight"], "float32")[..., None]
        pooled = ops.sum(self.history_embedding(ids) * weight, axis=1)
        total = ops.sum(weight, axis=1)
        if self.history_pooling == "mean":
            pooled = pooled / ops.maximum(total, 1e-6)
        else:  # "sqrt": the L2-normalised multi-hot input of Mult-DAE
            pooled = pooled / ops.sqrt(ops.maximum(total, 1e-6))
        user = ops.cast(inputs["user"], "int32")
        parts = [pooled]
        user_id = ops.cast(inputs.get("user_id", user), "int32")
        parts.append(self.user_embedding(user_id * int(self.use_user_id)))
        for name in _USER_FEATURES:
            value = ops.take(self.user_tables[name], user, axis=0) * int(self.use_user_features)
            parts.append(self.user_feature_embeddings[name](value))
        joined = self.query_drop(ops.concatenate(parts, axis=-1), training=training)
        if self.query_hidden is not None:
            joined = self.query_hidden(joined)
        hidden = [self.query_dense(joined)]
        if self.item_item_rank and linear:  # EASE reads the history as a binary row
            seen = ops.cast(ids > 0, "float32")[..., None]
            rows = ops.take(self.item_query_table, ids, axis=0) * seen
            hidden.append(ops.sum(rows, axis=1) * self.item_scale)
        if self.time_buckets and linear:
            when = ops.take(self.user_time_bucket, user, axis=0)
            hidden.append(ops.one_hot(when, self.time_buckets) * self.popularity_scale)
        return ops.concatenate([*hidden, ops.ones_like(hidden[0][:, :1])], axis=-1)

    def candidates(self, movie: Any | None = None, linear: bool = True) -> Any:
        """(M, d [+ movies] + 1) candidate embeddings (all movies when None), bias last."""
        if movie is None:
            movie = ops.arange(self.num_movies, dtype="int32")
        movie = ops.cast(movie, "int32")
        vector = self.movie_embedding(movie)
        if self.use_movie_features:
            genres = _masked_mean(self.genre_embedding, ops.take(self.genre_table, movie, axis=0))
            words = _masked_mean(self.word_embedding, ops.take(self.word_table, movie, axis=0))
            year = self.year_embedding(ops.take(self.year_table, movie, axis=0))
            features = ops.concatenate([genres, year, words], axis=-1)
            vector = vector + self.movie_feature_dense(features)
        parts = [vector]
        if self.item_item_rank and linear:
            parts.append(ops.take(self.item_candidate_table, movie, axis=0))
        if self.time_buckets and linear:
            parts.append(ops.take(self.popularity_table, movie, axis=0))
        return ops.concatenate([*parts, self.movie_bias(movie)], axis=-1)

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        # The deep part trains alone (the item-item path is frozen and left out).
        query = self.query(inputs, training, linear=False) / self.temperature
        if self.negatives == "full":
            logits = ops.matmul(query, ops.transpose(self.candidates(linear=False)))
            # Column 0 is the unknown movie: never a valid answer.
            return ops.concatenate([logits[:, :1] * 0 + _NEG_INF, logits[:, 1:]], axis=1)
        candidate = ops.cast(inputs["candidate"], "int32")
        logits = ops.matmul(query, ops.transpose(self.candidates(candidate, linear=False)))
        logits = self.sampling_correction(logits, inputs["candidate_probability"][None, :])
        # Another row's target equal to this row's is not a negative. (keras-rs 0.4's
        # RemoveAccidentalHits only adds a denormal, so the mask is applied here.)
        same = ops.equal(candidate[:, None], candidate[None, :])
        accidental = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(same)[0]) > 0))
        return ops.where(accidental, _NEG_INF, logits)

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Softmax cross-entropy: over the catalogue at each user's target ids (``full``),
        or at the diagonal of the in-batch score matrix; plus any regularisation."""
        log_probability = y_pred - ops.logsumexp(y_pred, axis=1, keepdims=True)
        if self.negatives == "full":
            target = ops.cast(x["target"], "int32")  # (B, T) movie indices, 0 = padding
            picked = ops.take_along_axis(log_probability, target, axis=1)
            loss = -ops.mean(ops.sum(picked * ops.cast(target > 0, "float32"), axis=1))
        else:
            loss = -ops.mean(ops.diagonal(log_probability))
        return loss + super().compute_loss(x, y, y_pred, sample_weight, training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_movies=self.num_movies,
            num_users=self.num_users,
            feature_sizes=self.feature_sizes,
            embedding_dim=self.embedding_dim,
            feature_dim=self.feature_dim,
            activation=self.activation,
            history_pooling=self.history_pooling,
            use_user_id=self.use_user_id,
            use_user_features=self.use_user_features,
            use_movie_features=self.use_movie_features,
            query_dropout=self.query_dropout,
            l2=self.l2,
            negatives=self.negatives,
            temperature=self.temperature,
            item_item_rank=self.item_item_rank,
            hidden_dim=self.hidden_dim,
            time_buckets=self.time_buckets,
        )
        return config

    @property
    def query_dim(self) -> int:
        """Width of a query (and candidate) embedding: deep, item-item and popularity
        columns plus the bias column."""
        return self.embedding_dim + self.item_item_rank + self.time_buckets + 1

    def column_slices(self) -> dict[str, slice]:
        """Where each path's columns sit in a query or candidate embedding."""
        d, r, t = self.embedding_dim, self.item_item_rank, self.time_buckets
        return {
            "deep": slice(0, d),
            "item_item": slice(d, d + r),
            "popularity": slice(d + r, d + r + t),
        }


def _averaging_momentum(momentum: float, steps: int) -> float:
    """The moving average starts at the first step's weights and has no bias correction, so
    a short run (a tiny data set, a few epochs) averages over a shorter window instead: the
    start's share of the average, ``momentum ** steps``, stays below e^-5."""
    return max(0.0, min(momentum, 1.0 - 5.0 / max(steps, 1)))  # 0 (off) stays 0


def _max_cols(kind: str) -> int:
    from movierec.data import features

    return features.MAX_GENRES if kind == "genres" else features.MAX_TITLE_WORDS


def _masked_mean(embedding: keras.layers.Embedding, ids: Any) -> Any:
    mask = ops.cast(ids > 0, "float32")[..., None]
    return ops.sum(embedding(ids) * mask, axis=-2) / ops.maximum(ops.sum(mask, axis=-2), 1.0)


class _Examples(keras.utils.PyDataset):
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
            weight = _rating_weight(self.ratings[u], self.settings["rating_weighting"])
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


def _history_inputs(
    queries: QueryBatch, num_movies: int, mode: str, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, width) history ids and weights of ``queries``; unknown movies (index 0 or
    beyond the model's catalogue) drop out, rows past ``len(queries)`` are padding."""
    ids, weights = [], []
    for h, r in zip(queries.histories, queries.history_ratings, strict=True):
        h = np.asarray(h, np.int64)
        ok = (h > 0) & (h < num_movies)
        ids.append(h[ok].astype(np.int32))
        weights.append(_rating_weight(np.asarray(r, np.float32)[ok], mode))
    width = bucket(max((len(i) for i in ids), default=0), minimum=8)
    return pad_lists(ids, weights, rows, width)


def _query_chunks(histories: list[np.ndarray], limit: int = 1 << 18) -> list[np.ndarray]:
    """Consecutive query rows in chunks of at most 1,024 whose padded histories hold at
    most ``limit`` ids (rows x widest history), so one long history does not make a
    whole chunk's input that wide."""
    chunks, start, widest = [], 0, 0
    for row, history in enumerate(histories):
        wider = max(widest, bucket(len(history), minimum=8))
        if row > start and (row - start >= 1024 or bucket(row - start + 1) * wider > limit):
            chunks.append(np.arange(start, row))
            start, wider = row, bucket(len(history), minimum=8)
        widest = wider
    if start < len(histories):
        chunks.append(np.arange(start, len(histories)))
    return chunks


def _rating_weight(ratings: np.ndarray, mode: str) -> np.ndarray:
    """How much one rated movie counts in the history: a 5 says more than a 1."""
    if mode == "none":
        return np.ones_like(ratings)
    if mode == "linear":  # 1 star -> 0.2 ... 5 stars -> 1; unknown (0) ratings count fully
        return np.where(ratings > 0, ratings / 5.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown rating_weighting {mode!r}")


@functools.singledispatch
def _fit(train: Any, retriever: TwoTowerRetriever, verbose: int, callbacks: list | None):
    """Fit ``retriever`` on ``train``: one implementation per kind of training set."""
    raise TypeError(f"cannot train the two-tower on a {type(train).__name__}")


@_fit.register(TrainingSet)
def _(train: TrainingSet, retriever: TwoTowerRetriever, verbose: int, callbacks: list | None):
    return retriever._fit_in_memory(train, verbose, callbacks)


@_fit.register(ShardedTrainingSet)
def _(train: ShardedTrainingSet, retriever: TwoTowerRetriever, verbose: int, callbacks):
    from movierec.retrieval.two_tower_stream import fit_streamed  # imports this module

    return fit_streamed(retriever, train, verbose)


class TwoTowerRetriever(Retriever):
    """The default retriever: history-driven two-tower model trained with a full softmax."""

    name = "two-tower"
    #: ``fit`` also takes a sharded training set (:mod:`movierec.retrieval.two_tower_stream`).
    streams = True

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.train: TrainingSet | None = None
        self._candidates: np.ndarray | None = None

    settings_class = TwoTowerSettings
    #: Trains in several processes (Keras ``DataParallel`` over all their devices).
    multi_process = True

    def _new_model(
        self, train: TrainingSet, tables: FeatureTables, time_buckets: int = 0
    ) -> TwoTowerModel:
        s = self.settings
        if s["negatives"] not in ("full", "in-batch"):
            raise ValueError(f"negatives must be 'full' or 'in-batch', not {s['negatives']!r}")
        return TwoTowerModel(
            num_movies=train.movies.size,
            num_users=train.users.size,
            feature_sizes=tables.sizes(),
            embedding_dim=int(s["embedding_dim"]),
            feature_dim=int(s["feature_dim"]),
            activation=s["activation"],
            history_pooling=s["history_pooling"],
            use_user_id=bool(s["use_user_id"]),
            use_user_features=bool(s["use_user_features"]) and train.dataset.users is not None,
            use_movie_features=bool(s["use_movie_features"]),
            query_dropout=float(s["query_dropout"]),
            l2=float(s["l2"]),
            negatives=s["negatives"],
            temperature=float(s["temperature"]),
            item_item_rank=min(int(s["item_item_rank"]), train.movies.size),
            hidden_dim=int(s["hidden_dim"]),
            time_buckets=time_buckets,
        )

    def fit(
        self,
        train: TrainingSet,
        *,
        verbose: int = 1,
        callbacks: list | None = None,
        options: Any = None,
    ) -> dict[str, list[float]]:
        """Train from scratch; ``callbacks`` (Keras) let experiments watch every epoch.

        A :class:`~movierec.data.shards.ShardedTrainingSet` trains streamed from its
        shards (:mod:`movierec.retrieval.two_tower_stream`); ``options`` (the streamed
        trainer's) may not ask for checkpoints, which this model does not write.

        Args:
            train: A :class:`TrainingSet`, or an open sharded training set to stream.
            verbose: Keras-style verbosity; 0 trains silently.
            callbacks: Keras callbacks for every epoch.
            options: The streamed trainer's :class:`~movierec.ranking.trainer.TrainOptions`
                (``checkpoint_dir`` must be unset); ignored in memory.

        Returns:
            Keras's per-epoch history, plus ``seconds`` and, with the item-item path,
            ``item_item_lambda`` and ``item_item_scale`` (one value each).

        Raises:
            ModelError: Checkpoints were asked for, or there are no training ratings.
        """
        if options is not None and getattr(options, "checkpoint_dir", None) is not None:
            raise ModelError("two-tower: training does not save checkpoints (the dcn ranker does)")
        return _fit(train, self, verbose, callbacks)

    def _fit_in_memory(
        self, train: TrainingSet, verbose: int, callbacks: list | None
    ) -> dict[str, list[float]]:
        """:meth:`fit` on a training set held in memory."""
        s = self.settings
        if len(train) == 0:
            raise ModelError("two-tower: the training set has no ratings")
        keras.utils.set_random_seed(int(s["seed"]))
        tables = build_feature_tables(train)
        popularity = (
            recent_popularity(train, int(s["recent_popularity_buckets"]))
            if float(s["recent_popularity_weight"]) > 0
            else None
        )
        model = self._new_model(train, tables, popularity.buckets if popularity else 0)
        model.set_feature_tables(tables)
        if popularity is not None:
            model.popularity_table.assign(popularity.table)
            model.user_time_bucket.assign(popularity.user_bucket)
        start = time.perf_counter()
        examples = _Examples(train, s, np.random.default_rng(int(s["seed"])))
        steps = (s["steps_per_epoch"] or len(examples)) * int(s["epochs"])
        rate: Any = float(s["learning_rate"])
        if s["cosine_decay"]:
            rate = keras.optimizers.schedules.CosineDecay(rate, steps)
        momentum = _averaging_momentum(float(s["ema_momentum"]), steps)
        # With use_ema, fit ends by writing the averaged weights into the model.
        model.compile(optimizer=keras.optimizers.Adam(rate, use_ema=momentum > 0,
                                                      ema_momentum=momentum))
        self.network, self.train, self._tables = model, train, tables
        history = model.fit(
            examples,
            epochs=int(s["epochs"]),
            steps_per_epoch=s["steps_per_epoch"],
            verbose=verbose,
            callbacks=callbacks or [],
        )
        self._candidates = None
        result = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        if model.item_item_rank:
            found = fit_item_item(
                train,
                rank=model.item_item_rank,
                window_seconds=float(s["item_item_session_seconds"]),
                far_weight=float(s["item_item_far_weight"]),
                seed=int(s["seed"]),
                l2=None if s["item_item_lambda"] is None else float(s["item_item_lambda"]),
            )
            model.item_query_table.assign(found.query_table)
            model.item_candidate_table.assign(found.candidate_table)
            result["item_item_lambda"] = [found.l2]
        self._set_path_scales()
        if model.item_item_rank:
            result["item_item_scale"] = [float(model.item_scale.numpy())]
        result["seconds"] = [time.perf_counter() - start]
        return result

    def _set_path_scales(self, by_user: Histories | None = None, users: int = 1000) -> None:
        """Weigh the frozen paths against the deep part by their spread: ``item_scale``
        makes the item-item scores spread ``item_item_share`` times as much as the deep
        scores, ``popularity_scale`` is ``recent_popularity_weight`` times the deep
        spread (its table is already standardised). Spread = mean per-user standard
        deviation over the catalogue, on up to ``users`` training users picked by the
        seed (``by_user``: their histories, by default the training set's)."""
        model = self.require_network()
        if not (model.item_item_rank or model.time_buckets):
            return
        if model.item_item_rank:
            model.item_scale.assign(1.0)  # the spread is measured at scale 1
        self._candidates = None
        by_user = self.train.by_user if by_user is None else by_user
        rng = np.random.default_rng(int(self.settings["seed"]))
        known = np.flatnonzero(np.diff(by_user.offsets) > 0)
        sample = rng.choice(known, min(users, len(known)), replace=False).astype(np.int32)
        queries = self.query_embeddings(QueryBatch.from_histories(by_user, sample))
        candidates = self.candidate_embeddings()
        cols = model.column_slices()

        def spread(path: str) -> float:
            """Mean per-user standard deviation of one path's scores over the catalogue."""
            scores = queries[:, cols[path]] @ candidates[:, cols[path]].T
            return float(np.mean(scores[:, 1:].std(axis=1)))

        deep = spread("deep")
        if model.item_item_rank:
            share = float(self.settings["item_item_share"])
            model.item_scale.assign(share * deep / max(spread("item_item"), 1e-12))
        if model.time_buckets:
            model.popularity_scale.assign(float(self.settings["recent_popularity_weight"]) * deep)
        self._candidates = None

    def query_embeddings(self, queries: QueryBatch) -> np.ndarray:
        """(n, query_dim) float32 query embeddings, computed in chunks of bounded history."""
        model = self.require_network()
        if getattr(self, "_query_fn", None) is None or self._query_fn[0] is not model:
            self._query_fn = (model, CompiledInference(model, model.query))
        compiled = self._query_fn[1]
        users = np.where(queries.user_index < model.num_users, queries.user_index, 0)
        out = [np.zeros((0, model.query_dim), np.float32)]
        mode = self.settings["rating_weighting"]
        for chunk in _query_chunks(queries.histories):
            start = int(chunk[0])
            part = queries.take(chunk)
            rows = bucket(len(part))
            history, weight = _history_inputs(part, model.num_movies, mode, rows)
            inputs = {
                "user": pad_rows(users[start : start + len(part)], rows),
                "history": history,
                "history_weight": weight,
            }
            out.append(compiled(inputs)[: len(part)].astype(np.float32, copy=False))
        return np.concatenate(out)

    def similar_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Similarity = the EASE row (what having rated the movie predicts) plus
        ``similar_deep_weight`` times the deep candidate embeddings' cosine, each divided
        by its spread over the catalogue for that movie (so neither dominates by scale).
        Per-movie divisors fold into the query side, keeping it one dot product; spreads
        are measured against up to 4,096 movies picked by the seed. Plain cosine when the
        model has no item-item path."""
        model = self.require_network()
        candidates = self.candidate_embeddings()
        cols = model.column_slices()
        deep = unit_rows(candidates[:, cols["deep"]])
        if not model.item_item_rank:
            return deep, deep
        linear = candidates[:, cols["item_item"]]
        query = np.asarray(model.item_query_table.numpy())
        rng = np.random.default_rng(int(self.settings["seed"]))
        sample = rng.choice(len(deep), min(len(deep), 4096), replace=False)
        spread_linear = np.empty(len(deep), np.float32)
        spread_deep = np.empty(len(deep), np.float32)
        for start in range(0, len(deep), 1024):
            rows = slice(start, start + 1024)
            spread_linear[rows] = (query[rows] @ linear[sample].T).std(axis=1)
            spread_deep[rows] = (deep[rows] @ deep[sample].T).std(axis=1)
        weight = float(self.settings["similar_deep_weight"])
        side = np.concatenate(
            [
                query / np.maximum(spread_linear, 1e-12)[:, None],
                deep * (weight / np.maximum(spread_deep, 1e-12))[:, None],
            ],
            axis=1,
        )
        return side.astype(np.float32), np.concatenate([linear, deep], axis=1)

    def candidate_embeddings(self) -> np.ndarray:
        """(movies, query_dim) float32 candidate embeddings, computed once and cached."""
        model = self.require_network()
        if self._candidates is None:
            self._candidates = np.asarray(model.candidates(), dtype=np.float32)
        return self._candidates

    def save_extras(self, directory: Path) -> None:
        """Write the side-feature vocabularies (``features.json``) beside the network."""
        write_json(directory / FEATURES_FILE, self._tables.vocabularies)

    def restore(self, directory: Path, train: TrainingSet) -> None:
        """Read back the side-feature vocabularies (none if the file is missing)."""
        vocab_path = directory / FEATURES_FILE
        vocabularies = json.loads(vocab_path.read_text()) if vocab_path.is_file() else {}
        self.train = train
        self._tables = FeatureTables(movie={}, user={}, vocabularies=vocabularies)
