"""Non-neural reference scorers: popularity and EASE.

They are the yardsticks the benchmark measures movierec's models against, and
popularity is also a sensible fallback. Each is a ``score_fn`` for
:func:`movierec.evaluation.evaluate.evaluate_scores`: user indices in, a
(users x movies.size) score matrix out.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from movierec.data.training import TrainingSet


def interaction_matrix(train: TrainingSet) -> sparse.csr_matrix:
    """Binary users x movies matrix (rows/columns are vocabulary indices)."""
    ones = np.ones(len(train), dtype=np.float32)
    matrix = sparse.csr_matrix(
        (ones, (train.user_index, train.movie_index)),
        shape=(train.users.size, train.movies.size),
    )
    matrix.data[:] = 1.0  # duplicates collapse to one interaction
    return matrix


class Popularity:
    """Scores every movie by how many training users rated it."""

    def __init__(self, train: TrainingSet):
        self.counts = np.asarray(interaction_matrix(train).sum(axis=0)).ravel()

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(user_index), 1))


class EASE:
    """Steck's EASE^R: a closed-form item-item linear autoencoder (Steck, WWW 2019)."""

    def __init__(self, train: TrainingSet, l2: float = 500.0):
        self.matrix = interaction_matrix(train)
        gram = (self.matrix.T @ self.matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        inverse = np.linalg.inv(gram)
        self.weights = -inverse / np.diag(inverse)
        self.weights[np.diag_indices_from(self.weights)] = 0.0

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[user_index] @ self.weights)
