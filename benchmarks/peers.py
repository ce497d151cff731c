"""Public systems the quality benchmark compares movierec against.

Installed with ``pip install -e ".[peers]"`` (implicit, scikit-surprise); each
peer is skipped with a note when its package is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from movierec.baselines import interaction_matrix
from movierec.data.training import TrainingSet


def implicit_scorer(train: TrainingSet, algorithm: str, seed: int):
    """A score_fn from implicit's ALS or BPR (untuned, library defaults but 64 factors)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = interaction_matrix(train)
    if algorithm == "als":
        model = AlternatingLeastSquares(factors=64, iterations=15, random_state=seed)
    else:
        model = BayesianPersonalizedRanking(factors=64, iterations=100, random_state=seed)
    model.fit(matrix, show_progress=False)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)

    def score(user_index: np.ndarray) -> np.ndarray:
        return users[user_index] @ items.T

    return score


def surprise_predictions(
    train: pd.DataFrame, test: pd.DataFrame, algorithm: str, seed: int, scale=(1.0, 5.0)
) -> np.ndarray:
    """Surprise's SVD, SVD++ or KNNBaseline (library defaults) predictions for the test pairs."""
    import surprise

    reader = surprise.Reader(rating_scale=scale)
    data = surprise.Dataset.load_from_df(train[["user_id", "movie_id", "rating"]], reader)
    trainset = data.build_full_trainset()
    algo = {
        "svd": lambda: surprise.SVD(random_state=seed),
        "svd++": lambda: surprise.SVDpp(random_state=seed),
        "knn-baseline": lambda: surprise.KNNBaseline(
            sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
        ),
    }[algorithm]()
    algo.fit(trainset)
    return np.array(
        [algo.predict(u, m).est for u, m in zip(test["user_id"], test["movie_id"], strict=True)],
        dtype=np.float32,
    )
