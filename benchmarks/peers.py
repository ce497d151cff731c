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


#: The grid tuned iALS searches (Rendle et al., "Revisiting the Performance of iALS on
#: Item Recommendation Benchmarks", RecSys 2022: the factors, the regularization and the
#: weight of the observed entries are what matter; 15 sweeps are enough on these sizes).
IALS_GRID = {
    "factors": (32, 64, 128, 256),
    "regularization": (3.0, 10.0, 30.0, 100.0),
    "alpha": (1.0, 3.0, 10.0),
}
IALS_ITERATIONS = 15


def _ials(matrix, factors: int, regularization: float, alpha: float, seed: int):
    """implicit's CPU ALS fitted to ``matrix`` (users x movies); its score function."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=alpha,
        iterations=IALS_ITERATIONS, random_state=seed,
    )
    model.fit(matrix, show_progress=False)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return lambda user_index: users[user_index] @ items.T


def tuned_ials(train: TrainingSet, seed: int, validation_fraction: float = 0.1):
    """implicit's iALS with factors, regularization and alpha chosen on held-out training
    ratings, then refitted on all of ``train``.

    A seeded ``validation_fraction`` of the training ratings is held out; every point of
    :data:`IALS_GRID` is fitted to the rest and scored by NDCG@10 of the held-out ratings
    with movierec's metric code (the rest's movies excluded), as EASE's ``lambda`` is
    chosen (:func:`movierec.retrieval.item_item.choose_l2`). The test split is never seen.

    Returns:
        The score function of the refitted model and the chosen settings, with the
        validation NDCG@10 of the best point.
    """
    from movierec.evaluation.evaluate import evaluate_scores

    held = np.random.default_rng(seed).random(len(train)) < validation_fraction
    part = TrainingSet.build(
        train.dataset, train.ratings[~held], users=train.users, movies=train.movies
    )
    validation = train.ratings[held]
    part_matrix = interaction_matrix(part)
    best: tuple[float, dict[str, float]] = (-1.0, {})
    for factors in IALS_GRID["factors"]:
        for regularization in IALS_GRID["regularization"]:
            for alpha in IALS_GRID["alpha"]:
                point = {"factors": factors, "regularization": regularization, "alpha": alpha}
                score = _ials(part_matrix, factors, regularization, alpha, seed)
                ndcg = evaluate_scores(score, part, validation, ks=(10,))["ndcg@10"]
                if ndcg > best[0]:
                    best = (ndcg, point)
    chosen = best[1]
    score = _ials(
        interaction_matrix(train), int(chosen["factors"]), float(chosen["regularization"]),
        float(chosen["alpha"]), seed,
    )
    return score, {**chosen, "validation ndcg@10": best[0]}


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


#: Settings of the cornac autoencoders: Mult-VAE's network as Liang et al. (WWW 2018) build
#: it (one 600-wide hidden layer, 200 latent dimensions, KL weight 0.2) for cornac's default
#: 100 epochs; BiVAE as the Microsoft Recommenders ML-100K notebook trains it (k=50,
#: encoder [100], Poisson likelihood, 500 epochs: about an hour a split on 2 cores, so the
#: benchmark runs it only when asked, ``--cornac mult-vae bivae``).
CORNAC_SETTINGS = {
    "mult-vae": {"k": 200, "autoencoder_structure": [600], "act_fn": "tanh",
                 "likelihood": "mult", "n_epochs": 100, "batch_size": 100,
                 "learning_rate": 0.001, "beta": 0.2},
    "bivae": {"k": 50, "encoder_structure": [100], "act_fn": "tanh", "likelihood": "pois",
              "n_epochs": 500, "batch_size": 128, "learning_rate": 0.001},
}


def cornac_scorer(train: TrainingSet, algorithm: str, seed: int):
    """A score_fn from cornac's Mult-VAE (VAECF) or BiVAE (BiVAECF), trained on the same
    implicit interactions as every other retriever (each training rating counts as 1)."""
    import cornac
    import torch

    matrix = interaction_matrix(train).tocoo()
    triples = [(str(u), str(i), 1.0) for u, i in zip(matrix.row, matrix.col, strict=True)]
    data = cornac.data.Dataset.from_uir(triples, seed=seed)
    settings = CORNAC_SETTINGS[algorithm]
    if algorithm == "mult-vae":
        model = cornac.models.VAECF(**settings, seed=seed, use_gpu=False)
    else:
        model = cornac.models.BiVAECF(**settings, seed=seed, use_gpu=False)
    with torch.random.fork_rng():
        model.fit(data)
    # Cornac's own indices -> ours.
    item_of = np.zeros(data.num_items, np.int64)
    for raw, idx in data.iid_map.items():
        item_of[idx] = int(raw)
    user_of = {int(raw): idx for raw, idx in data.uid_map.items()}
    n_movies = train.movies.size

    if algorithm == "bivae":
        theta = model.bivae.mu_theta.detach().cpu().numpy()
        beta = model.bivae.mu_beta.detach().cpu().numpy()

        def latent(rows: np.ndarray) -> np.ndarray:
            return theta[rows] @ beta.T
    else:
        def latent(rows: np.ndarray) -> np.ndarray:
            x = model.r_mat[rows].toarray().astype(np.float32)
            x[x > 0] = 1.0
            with torch.no_grad():
                z, _ = model.vae.encode(torch.tensor(x))
                return model.vae.decode(z).cpu().numpy()

    def score(user_index: np.ndarray) -> np.ndarray:
        out = np.full((len(user_index), n_movies), -np.inf, np.float32)
        rows = np.array([user_of.get(int(u), -1) for u in user_index])
        known = rows >= 0
        if known.any():
            out[np.ix_(np.flatnonzero(known), item_of)] = latent(rows[known])
        return out

    return score
