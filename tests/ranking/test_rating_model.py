"""RatingModel on a small synthetic catalogue with a planted taste structure.

Users belong to one of two groups; each group loves one half of the movies (4-5
stars) and dislikes the other (1-2 stars), with some noise. A model that learns
anything beats the global mean; a history-aware one can place a user it has no
id for from the ratings the query carries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import movierec  # noqa: F401  (selects the JAX backend before keras loads)
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch
from movierec.models.settings import SettingsError
from movierec.ranking.rating_model import RatingModel
from movierec.testing import make_planted_dataset, movie_taste

N_USERS, N_MOVIES, PER_USER = 80, 40, 24
FAST = {
    "embedding_dim": 8,
    "hidden_units": 16,
    "users_per_batch": 16,
    "epochs": 15,
    "patience": 5,
    "validation_fraction": 0.1,
    "id_dropout": 0.2,
    "seed": 3,
    "members": 1,
}


def _planted_split(with_users: bool) -> tuple[TrainingSet, pd.DataFrame]:
    """Half of each user's ratings in their own taste, half not; a random fifth held out."""
    dataset = make_planted_dataset(N_USERS, N_MOVIES, PER_USER, off_taste=0.5, noise=0.5,
                                   with_users=with_users)
    ratings = dataset.ratings
    test_rows = np.random.default_rng(0).random(len(ratings)) < 0.2
    train = TrainingSet.build(dataset, ratings[~test_rows].reset_index(drop=True))
    return train, ratings[test_rows].reset_index(drop=True)


def _rmse(model: RatingModel, train: TrainingSet, test: pd.DataFrame) -> float:
    queries = QueryBatch.from_training(train, train.users.lookup(test["user_id"]))
    pred = model.predict(queries, train.movies.lookup(test["movie_id"]))
    assert pred.dtype == np.float32
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    return float(np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def trained() -> tuple[RatingModel, TrainingSet, pd.DataFrame]:
    train, test = _planted_split(with_users=True)
    model = RatingModel(**{**FAST, "members": 2})
    history = model.fit(train, verbose=0)
    assert "val_rmse" in history and "member1_val_rmse" in history
    return model, train, test


def test_an_ensemble_with_user_features_beats_the_global_mean_by_far(trained):
    """Two members and the user table, on noisy ratings half off taste (the contract,
    tests/models/test_model_contract.py, covers one member without user features)."""
    model, train, test = trained
    constant = float(np.sqrt(np.mean((test["rating"].to_numpy() - train.rating.mean()) ** 2)))
    assert _rmse(model, train, test) < 0.6 * constant


def test_unknown_user_follows_history(trained):
    model, train, _ = trained
    ids = [str(m) for m in range(1, N_MOVIES + 1)]
    taste = np.array([movie_taste(m, N_MOVIES) for m in ids])
    first = np.array([(int(m) - 1) % (N_MOVIES // 2) < 10 for m in ids])  # 10 of each taste
    movies = train.movies.lookup(ids)
    seen, unseen = movies[first], movies[~first]
    for group in (0, 1):
        liked = np.where(taste[first] == group, 5.0, 1.0).astype(np.float32)
        queries = QueryBatch(
            np.zeros(len(unseen), np.int32),  # not a trained user
            [seen] * len(unseen),
            [liked] * len(unseen),
        )
        pred = model.predict(queries, unseen)
        same = taste[~first] == group
        assert pred[same].mean() > pred[~same].mean() + 1.0


def test_save_load_round_trip(trained, tmp_path):
    model, train, test = trained
    model.save(tmp_path)
    loaded = RatingModel.load(tmp_path, model.settings, train)
    queries = QueryBatch.from_training(train, train.users.lookup(test["user_id"]))
    movies = train.movies.lookup(test["movie_id"])
    np.testing.assert_array_equal(model.predict(queries, movies), loaded.predict(queries, movies))


def test_members_differ_and_are_averaged(trained):
    model, train, test = trained
    queries = QueryBatch.from_training(train, train.users.lookup(test["user_id"]))
    movies = train.movies.lookup(test["movie_id"])
    ensemble = model.network
    assert len(ensemble.members) == 2
    single = []
    for member in ensemble.members:
        model.network = member
        single.append(model.predict(queries, movies))
    model.network = ensemble
    assert not np.allclose(single[0], single[1])  # different seeds, different networks
    inside = np.all([(p > 1.0) & (p < 5.0) for p in single], axis=0)  # not clipped
    assert inside.sum() > 10
    mean = (single[0] + single[1]) / 2
    np.testing.assert_allclose(model.predict(queries, movies)[inside], mean[inside], atol=1e-5)


def test_padding_does_not_change_scores(trained):
    model, train, _ = trained
    movies = np.arange(1, train.movies.size, dtype=np.int32)
    user = train.users.index("1")
    queries = QueryBatch.from_training(train, np.full(len(movies), user))
    full = model.predict(queries, movies)
    for n in (1, 7, 33):
        np.testing.assert_allclose(
            model.predict(queries.take(np.arange(n)), movies[:n]), full[:n], atol=1e-5
        )


def test_load_and_predict_errors(tmp_path):
    train, _ = _planted_split(with_users=False)
    with pytest.raises(ModelError):
        RatingModel.load(tmp_path, {}, train)
    with pytest.raises(SettingsError, match="'members' must be >= 1"):
        RatingModel(members=0)
    with pytest.raises(ModelError):
        RatingModel().predict(QueryBatch(np.array([1])), np.array([1]))


def test_sparse_updates_match_dense_updates():
    """Row-sparse Adagrad on the user tables is the dense update minus the zero rows:
    the same weights (to float rounding) after the same batches."""
    train, _ = _planted_split(with_users=True)
    weights = []
    for sparse in (True, False):
        model = RatingModel(**{**FAST, "epochs": 2, "sparse_updates": sparse})
        model.fit(train, verbose=0)
        weights.append([np.asarray(v.value) for v in model.network.weights])
    assert len(weights[0]) == len(weights[1]) > 10
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    user_table = weights[0][[i for i, v in enumerate(model.network.weights)
                             if v.path.endswith("user_embedding/embeddings")][0]]
    assert np.abs(user_table).max() > 0.011  # trained, not just the N(0, 0.01) start
