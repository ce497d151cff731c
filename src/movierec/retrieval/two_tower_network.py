"""The two-tower Keras network: both towers, the frozen item-item and popularity paths,
and the training logits of either negatives mode.

:class:`~movierec.retrieval.two_tower.TwoTowerRetriever` builds, trains and serves it
(the architecture and why: that module's docstring); the streamed trainer
(:mod:`movierec.retrieval.two_tower_stream`) trains the same network.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_rs
import numpy as np
from keras import ops

from movierec.data.features import FeatureTables

#: Logit of a masked-out candidate (an accidental hit among in-batch negatives).
NEG_INF = -1e9
#: The user side features the query tower reads, when the data set has them.
USER_FEATURES = ("age", "gender", "occupation", "zip")


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
            for name in USER_FEATURES
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
        #: The training loss per target movie (the loss is per user, summed over their
        #: movies): what progress lines show. A metric, so it holds no saved weights.
        self.loss_per_movie = keras.metrics.Mean(name="loss_per_movie")
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
            for name in USER_FEATURES
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
        for name in USER_FEATURES:
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
        user = ops.cast(inputs["user"], "int32")
        hidden = [self.deep_query({**inputs, "history_sum": pooled, "history_total": total},
                                  training)]  # fmt: skip
        if self.item_item_rank and linear:  # EASE reads the history as a binary row
            seen = ops.cast(ids > 0, "float32")[..., None]
            rows = ops.take(self.item_query_table, ids, axis=0) * seen
            hidden.append(ops.sum(rows, axis=1) * self.item_scale)
        if self.time_buckets and linear:
            when = ops.take(self.user_time_bucket, user, axis=0)
            hidden.append(ops.one_hot(when, self.time_buckets) * self.popularity_scale)
        return ops.concatenate([*hidden, ops.ones_like(hidden[0][:, :1])], axis=-1)

    def deep_query(self, inputs: dict[str, Any], training: bool = False) -> Any:
        """(B, d) deep part of the query from the history's weighted sum of embeddings
        ``inputs["history_sum"]`` (B, d) and total weight ``inputs["history_total"]``
        (B, 1), pooled by :func:`pool_norm`, and ``inputs["user"]``: the user's id and
        side features joined to it, through the hidden and the dense layer. Apart from
        :meth:`query` so that explanations can feed it sums they computed themselves."""
        user = ops.cast(inputs["user"], "int32")
        total = ops.cast(inputs["history_total"], "float32")
        pooled = ops.cast(inputs["history_sum"], "float32")
        parts = [pool_norm(pooled, total, self.history_pooling)]
        user_id = ops.cast(inputs.get("user_id", user), "int32")
        parts.append(self.user_embedding(user_id * int(self.use_user_id)))
        for name in USER_FEATURES:
            value = ops.take(self.user_tables[name], user, axis=0) * int(self.use_user_features)
            parts.append(self.user_feature_embeddings[name](value))
        joined = self.query_drop(ops.concatenate(parts, axis=-1), training=training)
        if self.query_hidden is not None:
            joined = self.query_hidden(joined)
        return self.query_dense(joined)

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
            return ops.concatenate([logits[:, :1] * 0 + NEG_INF, logits[:, 1:]], axis=1)
        candidate = ops.cast(inputs["candidate"], "int32")
        logits = ops.matmul(query, ops.transpose(self.candidates(candidate, linear=False)))
        logits = self.sampling_correction(logits, inputs["candidate_probability"][None, :])
        # Another row's target equal to this row's is not a negative. (keras-rs 0.4's
        # RemoveAccidentalHits only adds a denormal, so the mask is applied here.)
        same = ops.equal(candidate[:, None], candidate[None, :])
        accidental = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(same)[0]) > 0))
        return ops.where(accidental, NEG_INF, logits)

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Softmax cross-entropy: over the catalogue at each user's target ids (``full``),
        or at the diagonal of the in-batch score matrix; plus any regularisation.
        Each target movie's cross-entropy also goes to :attr:`loss_per_movie`."""
        log_probability = y_pred - ops.logsumexp(y_pred, axis=1, keepdims=True)
        if self.negatives == "full":
            target = ops.cast(x["target"], "int32")  # (B, T) movie indices, 0 = padding
            picked = ops.take_along_axis(log_probability, target, axis=1)
            mask = ops.cast(target > 0, "float32")
            loss = -ops.mean(ops.sum(picked * mask, axis=1))
            track_per_movie(self.loss_per_movie, picked, mask)
        else:
            loss = -ops.mean(ops.diagonal(log_probability))
            self.loss_per_movie.update_state(loss)
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


def pool_norm(pooled: Any, total: Any, pooling: str) -> Any:
    """The weighted sum of a history's embeddings divided by its ``total`` weight
    (``"mean"``) or the total's square root (``"sqrt"``: the L2-normalised multi-hot
    input of Mult-DAE)."""
    if pooling == "mean":
        return pooled / ops.maximum(total, 1e-6)
    return pooled / ops.sqrt(ops.maximum(total, 1e-6))


def track_per_movie(metric: keras.metrics.Mean, log_probability: Any, mask: Any) -> None:
    """Add a batch's mean cross-entropy per target movie to ``metric``, weighted by its
    number of targets (so the epoch's value is the mean over all its target movies).

    Args:
        metric: The running mean to update.
        log_probability: (B, T) log-probability of each user's target movies.
        mask: (B, T) 1.0 where a target is real, 0.0 where it is padding.
    """
    count = ops.sum(mask)
    total = -ops.sum(log_probability * mask)
    metric.update_state(total / ops.maximum(count, 1.0), sample_weight=count)


def _max_cols(kind: str) -> int:
    from movierec.data import features

    return features.MAX_GENRES if kind == "genres" else features.MAX_TITLE_WORDS


def _masked_mean(embedding: keras.layers.Embedding, ids: Any) -> Any:
    mask = ops.cast(ids > 0, "float32")[..., None]
    return ops.sum(embedding(ids) * mask, axis=-2) / ops.maximum(ops.sum(mask, axis=-2), 1.0)


def rating_weight(ratings: np.ndarray, mode: str) -> np.ndarray:
    """How much one rated movie counts in the history: a 5 says more than a 1."""
    if mode == "none":
        return np.ones_like(ratings)
    if mode == "linear":  # 1 star -> 0.2 ... 5 stars -> 1; unknown (0) ratings count fully
        return np.where(ratings > 0, ratings / 5.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown rating_weighting {mode!r}")


def averaging_momentum(momentum: float, steps: int) -> float:
    """The moving average starts at the first step's weights and has no bias correction, so
    a short run (a tiny data set, a few epochs) averages over a shorter window instead: the
    start's share of the average, ``momentum ** steps``, stays below e^-5."""
    return max(0.0, min(momentum, 1.0 - 5.0 / max(steps, 1)))  # 0 (off) stays 0


def training_optimizer(settings: dict[str, Any], steps_per_pass: int) -> keras.optimizers.Adam:
    """Adam for a whole two-tower run, in memory or streamed: the step size decays along a
    cosine over every step of ``epochs`` epochs (``steps_per_epoch``, or
    ``steps_per_pass`` for one pass over the users), and with ``ema_momentum`` Keras
    keeps a moving average of the weights that ``fit`` writes into the model at its end."""
    steps = (settings["steps_per_epoch"] or steps_per_pass) * int(settings["epochs"])
    rate: Any = float(settings["learning_rate"])
    if settings["cosine_decay"]:
        rate = keras.optimizers.schedules.CosineDecay(rate, steps)
    momentum = averaging_momentum(float(settings["ema_momentum"]), steps)
    return keras.optimizers.Adam(rate, use_ema=momentum > 0, ema_momentum=momentum)
