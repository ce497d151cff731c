"""The Keras network behind :class:`~movierec.ranking.rating_model.RatingModel`.

    stars = mean + b_user + b_movie + b_history + p · q + cross(p, q)

- ``q`` (movie) = id embedding + mean genre embedding + year + title words.
- ``p`` (user) = id embedding + age/gender/occupation/zip embeddings
  + SVD++ implicit feedback ``|N|^-1/2 Σ y_j`` over the movies in the history
  + a rating-aware term ``|N|^-1/2 Σ (r_j - mean_r) z_j``; so a user the model
  has no id for (index 0) still gets a profile from the history the query carries.
- ``b_history`` = a learnt weight times the user's shrunk mean rating offset: the
  bias of a user without an id.
- ``cross`` = a keras-rs DCN :class:`~keras_rs.layers.FeatureCross` over ``[p, q]``
  and a small ReLU layer: a residual on top of the dot product, zero at start.

The target movie is masked out of the history, so training (where the user's
history contains it) sees the same thing as prediction (where it does not).
L2 is applied per example to the rows a batch uses (as in SVD), not to whole tables.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_rs
from keras import ops

USER_FEATURES = ("age", "gender", "occupation", "zip")


@keras.saving.register_keras_serializable(package="movierec")
class RatingNetwork(keras.Model):
    """Biased, history-aware factorisation with a DCN residual; see the module doc."""

    def __init__(
        self,
        num_users: int,
        num_movies: int,
        feature_sizes: dict[str, int],
        genres_per_movie: int,
        words_per_title: int,
        embedding_dim: int = 64,
        cross_layers: int = 1,
        hidden_units: int = 64,
        dropout: float = 0.2,
        l2: float = 0.05,
        history_l2: float = 0.05,
        history_shrinkage: float = 10.0,
        mean_rating: float = 3.5,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_users = num_users
        self.num_movies = num_movies
        self.feature_sizes = dict(feature_sizes)
        self.genres_per_movie = genres_per_movie
        self.words_per_title = words_per_title
        self.embedding_dim = embedding_dim
        self.cross_layers = cross_layers
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.l2 = l2
        self.history_l2 = history_l2
        self.history_shrinkage = history_shrinkage
        self.mean_rating = mean_rating

        d = embedding_dim
        init = keras.initializers.RandomNormal(stddev=0.01)

        def table(rows: int, dim: int, name: str, initializer: Any = init) -> Any:
            return keras.layers.Embedding(rows, dim, embeddings_initializer=initializer, name=name)

        self.user_embedding = table(num_users, d, "user_embedding")
        self.user_bias = table(num_users, 1, "user_bias", "zeros")
        self.movie_embedding = table(num_movies, d, "movie_embedding")
        self.movie_bias = table(num_movies, 1, "movie_bias", "zeros")
        self.implicit_embedding = table(num_movies, d, "implicit_embedding")
        self.rated_embedding = table(num_movies, d, "rated_embedding")
        self.user_feature_embeddings = {
            name: table(max(feature_sizes.get(name, 1), 1), d, f"{name}_embedding")
            for name in USER_FEATURES
        }
        self.genre_embedding = table(max(feature_sizes.get("genre", 1), 1), d, "genre_embedding")
        self.year_embedding = table(max(feature_sizes.get("year", 1), 1), d, "year_embedding")
        self.word_embedding = table(max(feature_sizes.get("title_word", 1), 1), d, "word_embedding")
        self.history_weight = keras.layers.Dense(1, use_bias=False, name="history_bias")
        self.crosses = [
            keras_rs.layers.FeatureCross(projection_dim=d // 2, name=f"cross_{i}")
            for i in range(cross_layers)
        ]
        self.hidden = (
            keras.layers.Dense(hidden_units, activation="relu", name="hidden")
            if hidden_units
            else None
        )
        self.drop = keras.layers.Dropout(dropout)
        self.residual = keras.layers.Dense(1, kernel_initializer="zeros", name="residual")

    def build(self, input_shape: Any = None) -> None:
        # Side-feature tables, indexed by user / movie index; filled by set_feature_tables.
        def constant(name: str, shape: tuple[int, ...]) -> Any:
            return self.add_weight(
                name=name, shape=shape, dtype="int32", initializer="zeros", trainable=False
            )

        self.user_features = constant("user_features", (self.num_users, len(USER_FEATURES)))
        self.movie_genres = constant("movie_genres", (self.num_movies, self.genres_per_movie))
        self.movie_year = constant("movie_year", (self.num_movies,))
        self.movie_words = constant("movie_words", (self.num_movies, self.words_per_title))
        super().build(input_shape)

    def build_weights(self) -> None:
        """Create every weight with one dummy call (subclassed models build lazily)."""
        import numpy as np

        one = np.zeros(1, np.int32)
        self(
            {
                "user": one,
                "history": np.zeros((1, 1), np.int32),
                "history_rating": np.zeros((1, 1), np.float32),
                "slot": one,
                "movie": one,
            }
        )

    def get_build_config(self) -> dict[str, Any]:
        return {"built": True}

    def build_from_config(self, config: dict[str, Any]) -> None:
        # Loading must create the weights before reading them back.
        self.build_weights()

    def set_feature_tables(self, user: dict[str, Any], movie: dict[str, Any]) -> None:
        """Copy the int tables of :func:`build_feature_tables` into the network's weights."""
        import numpy as np

        self.user_features.assign(np.stack([user[n] for n in USER_FEATURES], axis=1))
        self.movie_genres.assign(movie["genres"])
        self.movie_year.assign(movie["year"])
        self.movie_words.assign(movie["title_words"])

    def _mean_of(self, embedding: Any, ids: Any) -> Any:
        """Mean embedding of the non-zero ids in each row (zeros when there are none)."""
        mask = ops.cast(ops.greater(ids, 0), "float32")[..., None]
        total = ops.sum(embedding(ids) * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        # Queries (users with their histories) are scored against several movies each:
        # ``slot`` says which query row each (query, movie) pair uses. History sums are
        # taken once per query, then the pair's own movie is taken back out.
        user = ops.cast(inputs["user"], "int32")
        history = ops.cast(inputs["history"], "int32")
        history_rating = ops.cast(inputs["history_rating"], "float32")
        slot = ops.cast(inputs["slot"], "int32")
        movie = ops.cast(inputs["movie"], "int32")

        present = ops.cast(ops.greater(history, 0), "float32")
        rated = history_rating * present
        # Masked sums as contractions over the gathered rows: no masked (query, history,
        # dim) copies, which dominate a step's memory traffic with long histories.
        implicit_rows = self.implicit_embedding(history)
        rated_rows = self.rated_embedding(history)
        sums = [
            ops.sum(present, axis=1),
            ops.sum(rated, axis=1),
            ops.einsum("ql,qld->qd", present, implicit_rows),
            ops.einsum("ql,qld->qd", present, rated_rows),
            ops.einsum("ql,qld->qd", rated, rated_rows),
        ]
        count, rating_sum, y_sum, z_sum, rz_sum = (ops.take(x, slot, axis=0) for x in sums)

        # Leave the scored movie out of its own history (it is there during training).
        own = ops.cast(ops.equal(ops.take(history, slot, axis=0), movie[:, None]), "float32")
        own = own * ops.cast(ops.greater(movie, 0), "float32")[:, None]
        is_own = ops.max(own, axis=1)
        own_rating = ops.sum(own * ops.take(rated, slot, axis=0), axis=1)
        y_own, z_own = self.implicit_embedding(movie), self.rated_embedding(movie)
        count = count - is_own
        rating_sum = rating_sum - own_rating
        y_sum = y_sum - is_own[:, None] * y_own
        z_sum = z_sum - is_own[:, None] * z_own
        rz_sum = rz_sum - (is_own * own_rating)[:, None] * z_own

        norm = ops.rsqrt(ops.maximum(count, 1.0))[:, None]
        mean_r = (rating_sum / ops.maximum(count, 1.0))[:, None]
        implicit = y_sum * norm
        rated_term = (rz_sum - mean_r * z_sum) * norm
        offset = (rating_sum - self.mean_rating * count) / (count + self.history_shrinkage)

        pair_user = ops.take(user, slot, axis=0)
        user_id = self.user_embedding(pair_user)
        features = ops.take(self.user_features, pair_user, axis=0)
        user_side = sum(
            self.user_feature_embeddings[name](features[:, i])
            for i, name in enumerate(USER_FEATURES)
        )
        p = user_id + user_side + implicit + rated_term

        movie_id = self.movie_embedding(movie)
        movie_side = (
            self._mean_of(self.genre_embedding, ops.take(self.movie_genres, movie, axis=0))
            + self.year_embedding(ops.take(self.movie_year, movie, axis=0))
            + self._mean_of(self.word_embedding, ops.take(self.movie_words, movie, axis=0))
        )
        q = movie_id + movie_side

        b_user = self.user_bias(pair_user)
        b_movie = self.movie_bias(movie)
        if training:
            self.add_loss(
                self.l2
                * ops.mean(
                    ops.sum(ops.square(user_id), axis=1)
                    + ops.sum(ops.square(movie_id), axis=1)
                    + ops.square(b_user[:, 0])
                    + ops.square(b_movie[:, 0])
                )
                + self.history_l2
                * ops.mean(
                    ops.sum(ops.square(implicit) + ops.square(rated_term), axis=1)
                    + ops.sum(ops.square(user_side) + ops.square(movie_side), axis=1)
                )
            )

        stars = (
            self.mean_rating
            + b_user
            + b_movie
            + self.history_weight(offset[:, None])
            + ops.sum(p * q, axis=1, keepdims=True)
        )
        if self.crosses or self.hidden is not None:
            x0 = ops.concatenate([p, q], axis=1)
            x = x0
            for cross in self.crosses:
                x = cross(x0, x)
            if self.hidden is not None:
                x = self.hidden(x)
            stars = stars + self.residual(self.drop(x, training=training))
        return stars[:, 0]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_users": self.num_users,
            "num_movies": self.num_movies,
            "feature_sizes": self.feature_sizes,
            "genres_per_movie": self.genres_per_movie,
            "words_per_title": self.words_per_title,
            "embedding_dim": self.embedding_dim,
            "cross_layers": self.cross_layers,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "l2": self.l2,
            "history_l2": self.history_l2,
            "history_shrinkage": self.history_shrinkage,
            "mean_rating": self.mean_rating,
        }


@keras.saving.register_keras_serializable(package="movierec")
class RatingEnsemble(keras.Model):
    """The mean of several :class:`RatingNetwork` members, saved as one ``model.keras``.

    Members differ only in their random seed (and validation slice): averaging
    them cancels much of the seed-to-seed noise of a single network's RMSE.
    """

    def __init__(self, members: list[RatingNetwork], **kwargs: Any):
        super().__init__(**kwargs)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.num_users = members[0].num_users
        self.num_movies = members[0].num_movies
        self.build_weights()

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        stars = [member(inputs, training=training) for member in self.members]
        return stars[0] if len(stars) == 1 else ops.mean(ops.stack(stars), axis=0)

    def build_weights(self) -> None:
        """Members arrive trained (fit) or built from their config (load): just mark it."""
        for member in self.members:
            if not member.built:
                member.build_weights()
        self.built = True

    def get_build_config(self) -> dict[str, Any]:
        return {"built": True}

    def build_from_config(self, config: dict[str, Any]) -> None:
        self.build_weights()

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RatingEnsemble:
        config = dict(config)
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)
