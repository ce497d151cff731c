"""Non-neural reference scorers: popularity and EASE.

They are the yardsticks the benchmark measures movierec's models against, and
popularity is also a sensible fallback. Each is a ``score_fn`` for
:func:`movierec.evaluation.evaluate.evaluate_scores`: user indices in, a
(users x movies.size) score matrix out.
"""

from __future__ import annotations

import numpy as np

from movierec.data.training import TrainingSet
from movierec.retrieval.item_item import fit_item_item, interaction_matrix


class Popularity:
    """Scores every movie by how many training users rated it."""

    def __init__(self, train: TrainingSet):
        self.counts = np.asarray(interaction_matrix(train).sum(axis=0)).ravel()

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(user_index), 1))


class EASE:
    """Steck's EASE^R (WWW 2019), exact, with ``lambda`` chosen on held-out training ratings
    unless ``l2`` is given (see :func:`movierec.retrieval.item_item.fit_item_item`)."""

    def __init__(self, train: TrainingSet, l2: float | None = None, seed: int = 0):
        fit = fit_item_item(
            train, rank=train.movies.size, window_seconds=0.0, far_weight=1.0, seed=seed, l2=l2
        )
        self.l2 = fit.l2
        self.matrix = interaction_matrix(train)
        self.query, self.candidate = fit.query_table, fit.candidate_table

    def __call__(self, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[user_index] @ self.query) @ self.candidate.T
