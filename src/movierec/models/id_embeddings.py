"""The network both Keras RS examples start from: one id-embedding table per side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from movierec.progress import Measure, keras_progress


class IdEmbeddingNetwork(keras.Model):
    """A user-id embedding table and a movie-id (candidate) embedding table.

    Subclasses add what they do with the pair (a dot product, dense layers);
    the shared part and its config live here once.
    """

    def __init__(self, num_users: int, num_candidates: int, embedding_dim: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_users = num_users
        self.num_candidates = num_candidates
        self.embedding_dim = embedding_dim
        self.user_embedding = keras.layers.Embedding(num_users, embedding_dim)
        self.candidate_embedding = keras.layers.Embedding(num_candidates, embedding_dim)

    @property
    def num_movies(self) -> int:
        """Rows of the movie table (the vocabulary's size), as every model network names it."""
        return self.num_candidates

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_users": self.num_users,
            "num_candidates": self.num_candidates,
            "embedding_dim": self.embedding_dim,
        }


def fit_example(
    network: keras.Model,
    inputs: Any,
    labels: Any,
    settings: dict[str, Any],
    *,
    verbose: int,
    callbacks: list | None,
    label: str,
    measures: Sequence[Measure],
) -> dict[str, list[float]]:
    """Train an example network as the Keras RS examples do: shuffled mini-batches of
    ``settings["batch_size"]`` for ``settings["epochs"]`` epochs; the Keras history.

    Args:
        network: The compiled example network.
        inputs: What the network is called on (user indices; the ranker adds movie
            indices).
        labels: Its targets, as Keras's ``fit`` takes them.
        settings: The model's settings; ``batch_size`` and ``epochs`` are read.
        verbose: 0 trains silently; above 0 logs one labelled line per epoch
            (:func:`~movierec.progress.keras_progress`), never Keras's own bars.
        callbacks: Keras callbacks, or ``None``.
        label: What the progress lines call the model (``retrieval 'example'``).
        measures: What each progress line shows.

    Returns:
        Keras's per-epoch history (``History.history``).
    """
    history = network.fit(
        inputs,
        labels,
        batch_size=settings["batch_size"],
        epochs=settings["epochs"],
        shuffle=True,
        verbose=0,
        callbacks=[*(callbacks or []), *keras_progress(label, measures, verbose)],
    )
    return history.history
