"""The Keras RS "Recommending movies: ranking" model, kept faithful as a baseline.

User-id and movie-id embeddings (dimension 32), concatenated, then Dense
256-64-1, trained by mean squared error on ratings scaled to [0, 1] with
Adagrad(0.1) for 5 epochs. movierec maps predictions back to stars.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from movierec.data.training import TrainingSet
from movierec.models.base import QueryBatch, Ranker
from movierec.models.id_embeddings import IdEmbeddingNetwork, fit_example
from movierec.models.inference import CompiledInference, bucket, pad_rows
from movierec.progress import Measure, model_label
from movierec.ranking.settings import ExampleRankingSettings

PREDICT_CHUNK = 4096


@keras.saving.register_keras_serializable(package="movierec")
class ExampleRankingNetwork(IdEmbeddingNetwork):
    """Embeddings of the pair, concatenated, through Dense 256-64-1."""

    def __init__(self, num_users: int, num_candidates: int, embedding_dim: int = 32, **kwargs):
        super().__init__(num_users, num_candidates, embedding_dim, **kwargs)
        self.ratings = keras.Sequential(
            [
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(1),
            ]
        )

    def call(self, inputs: dict[str, Any]) -> Any:
        pair = keras.ops.concatenate(
            [self.user_embedding(inputs["user_id"]), self.candidate_embedding(inputs["movie_id"])],
            axis=1,
        )
        return self.ratings(pair)


class ExampleRanker(Ranker):
    """The keras-rs basic_ranking example behind movierec's Ranker interface."""

    name = "example"
    #: (network, its compiled forward pass), made on first use.
    _compiled: tuple[Any, CompiledInference] | None = None

    settings_class = ExampleRankingSettings

    def fit(
        self, train: TrainingSet, *, verbose: int = 1, callbacks: list | None = None
    ) -> dict[str, list[float]]:
        """Train from scratch; ``callbacks`` (Keras) see every epoch."""
        keras.utils.set_random_seed(self.settings["seed"])
        low, high = train.dataset.rating_scale
        self.settings.update(min_rating=float(low), max_rating=float(high))
        self.network = ExampleRankingNetwork(
            train.users.size, train.movies.size, self.settings["embedding_dim"]
        )
        self.network.compile(
            loss=keras.losses.MeanSquaredError(),
            metrics=[keras.metrics.RootMeanSquaredError()],
            optimizer=keras.optimizers.Adagrad(self.settings["learning_rate"]),
        )
        return fit_example(
            self.network,
            {"user_id": train.user_index, "movie_id": train.movie_index},
            self._scale(train.rating),
            self.settings,
            verbose=verbose,
            callbacks=callbacks,
            label=model_label(self),
            measures=[
                Measure("loss", "loss", "(mean squared error per rating, stars scaled to 0-1)"),
                Measure("root_mean_squared_error", "rmse", "stars", float(high - low)),
            ],
        )

    def predict(self, queries: QueryBatch, movie_index: np.ndarray) -> np.ndarray:
        """One jitted call per chunk of 4,096 pairs (rows padded to powers of two):
        no per-call data pipeline, and safe to call from several threads at once."""
        network = self.require_network()
        users = np.asarray(queries.user_index, dtype=np.int32).reshape(-1)
        movies = np.asarray(movie_index, dtype=np.int32).reshape(-1)
        if self._compiled is None or self._compiled[0] is not network:
            forward = lambda inputs, training=False: network(inputs, training=training)  # noqa: E731
            self._compiled = (network, CompiledInference(network, forward))
        compiled = self._compiled[1]
        scaled = np.zeros(len(movies), np.float32)
        for start in range(0, len(movies), PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, len(movies))
            rows = bucket(stop - start, 16)
            inputs = {
                "user_id": pad_rows(users[start:stop], rows),
                "movie_id": pad_rows(movies[start:stop], rows),
            }
            scaled[start:stop] = np.asarray(compiled(inputs)).reshape(-1)[: stop - start]
        low, high = self.settings["min_rating"], self.settings["max_rating"]
        return (low + scaled * (high - low)).astype(np.float32)

    def _scale(self, rating: np.ndarray) -> np.ndarray:
        low, high = self.settings["min_rating"], self.settings["max_rating"]
        return ((rating - low) / (high - low)).astype(np.float32)
