"""Non-neural reference scorers: popularity and EASE.

They are the yardsticks the benchmark measures movierec's models against, and
popularity is also a sensible fallback. Each is a ``score_fn`` for
:func:`movierec.evaluation.evaluate.evaluate_scores`: user indices in, a
(users x movies.size) score matrix out.
"""

from __future__ import annotations

import numpy as np

from movierec.data.training import TrainingSet
from movierec.retrieval.item_item import choose_l2, ease_weights, interaction_matrix


class Popularity:
    """Scores every movie by how many training users rated it."""

    def __init__(self, train: TrainingSet):
        self.counts = np.asarray(interaction_matrix(train).sum(axis=0)).ravel()

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(user_index), 1))


class EASE:
    """Steck's EASE^R (WWW 2019), exact, with ``lambda`` chosen on held-out training ratings
    unless ``l2`` is given (:func:`movierec.retrieval.item_item.choose_l2`).

    Attributes:
        weights: (movies, movies) item-item weights B; row ``i`` is what having rated
            movie ``i`` adds to every other movie's score (the "EASE row").
    """

    def __init__(self, train: TrainingSet, l2: float | None = None, seed: int = 0):
        if l2 is None:
            l2, _ = choose_l2(
                train, rank=train.movies.size, window_seconds=0.0, far_weight=1.0, seed=seed
            )
        self.l2 = float(l2)
        self.matrix = interaction_matrix(train)
        gram = (self.matrix.T @ self.matrix).toarray().astype(np.float64)
        self.weights = ease_weights(gram, self.l2).astype(np.float32)

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[user_index] @ self.weights)
