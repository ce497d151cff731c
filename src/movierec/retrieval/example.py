"""The Keras RS "Recommending movies: retrieval" model, kept faithful as a baseline.

A user-id embedding and a movie-id embedding (dimension 32), scored by a dot
product, trained by mean squared error against ratings scaled to [0, 1] with
Adagrad(0.1), and searched with ``keras_rs.layers.BruteForceRetrieval``. It
regresses ratings instead of learning what users choose, which is why it ranks
below plain popularity; movierec keeps it so anyone can compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import keras_rs
import numpy as np

from movierec.data.training import TrainingSet
from movierec.models.base import QueryBatch, Retriever
from movierec.models.id_embeddings import IdEmbeddingNetwork, fit_example
from movierec.models.settings import ExampleSettings, setting
from movierec.progress import Measure, model_label


@dataclass(frozen=True)
class ExampleRetrievalSettings(ExampleSettings):
    """The keras-rs basic retrieval example (``--model example``): 50 epochs."""

    model_name: ClassVar[str] = "retrieval 'example'"

    epochs: int = setting(50, "passes over the training ratings", minimum=1)


@keras.saving.register_keras_serializable(package="movierec")
class ExampleRetrievalNetwork(IdEmbeddingNetwork):
    """Two embedding tables; ``call`` returns user embeddings (and top-k outside training)."""

    def __init__(self, num_users: int, num_candidates: int, embedding_dim: int = 32, **kwargs):
        super().__init__(num_users, num_candidates, embedding_dim, **kwargs)
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=10, return_scores=False)
        self.loss_fn = keras.losses.MeanSquaredError()

    def build(self, input_shape: Any) -> None:
        self.user_embedding.build(input_shape)
        self.candidate_embedding.build(input_shape)
        # The candidates are the movie embedding table itself, as in the example.
        self.retrieval.candidate_embeddings = self.candidate_embedding.embeddings
        self.retrieval.build(input_shape)
        super().build(input_shape)

    def call(self, inputs: Any, training: bool = False) -> dict[str, Any]:
        user_embeddings = self.user_embedding(inputs)
        result = {"user_embeddings": user_embeddings}
        if not training:
            result["predictions"] = self.retrieval(user_embeddings)
        return result

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        movie_embeddings = self.candidate_embedding(y["movie_id"])
        scores = keras.ops.sum(y_pred["user_embeddings"] * movie_embeddings, axis=1, keepdims=True)
        labels = keras.ops.expand_dims(y["rating"], -1)
        return self.loss_fn(labels, scores, sample_weight)


class ExampleRetriever(Retriever):
    """The keras-rs basic_retrieval example behind movierec's Retriever interface."""

    name = "example"

    settings_class = ExampleRetrievalSettings

    def _build(self, train: TrainingSet) -> ExampleRetrievalNetwork:
        network = ExampleRetrievalNetwork(
            train.users.size, train.movies.size, self.settings["embedding_dim"]
        )
        network.compile(optimizer=keras.optimizers.Adagrad(self.settings["learning_rate"]))
        network.build((None,))
        return network

    def fit(
        self, train: TrainingSet, *, verbose: int = 1, callbacks: list | None = None
    ) -> dict[str, list[float]]:
        """Train from scratch; ``callbacks`` (Keras) see every epoch."""
        keras.utils.set_random_seed(self.settings["seed"])
        self.network = self._build(train)
        labels = {
            "movie_id": train.movie_index,
            "rating": (train.rating - 1.0) / 4.0,  # the example's scaling to [0, 1]
        }
        shown = [Measure("loss", "loss", "(mean squared error per rating, stars scaled to 0-1)")]
        return fit_example(
            self.network, train.user_index, labels, self.settings, verbose=verbose,
            callbacks=callbacks, label=model_label(self), measures=shown,
        )  # fmt: skip

    def query_embeddings(self, queries: QueryBatch) -> np.ndarray:
        """Each query's user-id embedding row (its history is not used)."""
        table = self.require_network().user_embedding.embeddings
        return np.asarray(keras.ops.take(table, queries.user_index, axis=0), dtype=np.float32)

    def candidate_embeddings(self) -> np.ndarray:
        """The candidate tower's movie-id embedding table."""
        return np.asarray(self.require_network().candidate_embedding.embeddings, dtype=np.float32)
