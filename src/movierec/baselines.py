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
        self.weights = ease_weights((self.matrix.T @ self.matrix).toarray(), l2)

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[user_index] @ self.weights)


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's closed form from an item-item Gram matrix: B = I - P diagMat(1 / diag(P)) with
    P = (G + l2 I)^-1, i.e. the best ridge regression of each item on the others."""
    regularised = np.array(gram, dtype=np.float64)  # a copy: the caller's matrix stays as is
    regularised[np.diag_indices_from(regularised)] += l2
    inverse = np.linalg.inv(regularised)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights
