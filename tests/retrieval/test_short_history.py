"""The two-tower's short-history path: a visitor known by a few ratings.

A person described by 1-10 ratings is served mostly by an item-item path whose EASE
``lambda`` is chosen for such short queries, with each rating counted by its stars
(a 1-star rating pushes movies like it down); from ``short_history_length`` ratings
on, the query is the network's alone.
"""

from __future__ import annotations

import numpy as np
import pytest

import movierec
from movierec.models.base import QueryBatch
from movierec.retrieval.item_item import short_lambda, star_weights
from movierec.testing import make_planted_dataset, movie_taste

TASTES = 3
SETTINGS = {"epochs": 4, "item_item_rank": 32, "short_history_rank": 16, "batch_size": 32}


@pytest.fixture(scope="module")
def trained():
    data = make_planted_dataset(users=240, movies=60, per_user=20, tastes=TASTES, seed=3)
    split = movierec.split(data, seed=0)
    fitted = movierec.train_model("retrieval", split, settings=SETTINGS, refit=False, verbose=0)
    return data, split, fitted


def _taste(movie: str) -> int:
    return movie_taste(movie, 60, TASTES)


def test_star_weights_count_only_the_lowest_ratings_against():
    weights = star_weights(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), (1.0, 5.0))
    assert list(weights) == [-0.5, 0.25, 1.0, 1.0, 1.0]
    assert star_weights(np.array([0.5, 5.0]), (0.5, 5.0)).tolist() == [-0.5, 1.0]


def test_the_lambda_follows_the_history_length():
    lambdas = (64000.0, 16000.0, 4000.0, 1000.0)
    assert short_lambda(lambdas, 1) == pytest.approx(64000.0)
    assert short_lambda(lambdas, 10) == short_lambda(lambdas, 30) == pytest.approx(1000.0)
    assert 16000.0 > short_lambda(lambdas, 4) > 4000.0


def test_a_disliked_cluster_stays_out_of_a_visitors_top_ten(trained):
    _, _, fitted = trained
    rec = movierec.Recommender.from_models(fitted)
    liked = ["1", "2", "3"]  # taste 0
    disliked = ["21", "22", "23", "24"]  # taste 1, one star each
    ratings = {**dict.fromkeys(liked, 5.0), **dict.fromkeys(disliked, 1.0)}
    top = rec.recommend_for_ratings(ratings, k=10)
    tastes = [_taste(m) for m in top["movie_id"]]
    assert 1 not in tastes, tastes
    assert tastes.count(0) >= 8, tastes
    # Counted as a like instead, the same movies bring their cluster in.
    blind = rec.recommend_for_ratings(dict.fromkeys(liked + disliked, 5.0), k=10)
    assert sum(_taste(m) == 1 for m in blind["movie_id"]) >= 2


def test_a_visitor_with_one_rating_gets_its_taste(trained):
    _, _, fitted = trained
    rec = movierec.Recommender.from_models(fitted)
    for movie, taste in (("5", 0), ("45", 2)):
        top = rec.recommend_for_ratings({movie: 5.0}, k=10)
        assert sum(_taste(m) == taste for m in top["movie_id"]) >= 8, (movie, list(top.movie_id))


def test_short_path_weight_falls_with_history_length_and_vanishes_at_its_length(trained):
    _, _, fitted = trained
    retriever = fitted.model
    path = retriever._short
    assert path is not None and path.length == 20 and len(path.lambdas) == 4
    network_width = retriever.require_network().query_dim
    train = fitted.train_set

    def query(n: int) -> np.ndarray:
        movies = np.arange(1, n + 1, dtype=np.int32)  # movie indices, all in the catalogue
        batch = QueryBatch(np.array([0]), [movies], [np.full(n, 5.0, np.float32)])
        return retriever.query_embeddings(batch)[0]

    assert train.movies.size > 20
    # w(n) = max(0, 1 - n / 20): the network part grows with n, the short part is gone at 20.
    network_norms = [np.linalg.norm(query(n)[:network_width]) for n in (1, 5, 15, 20)]
    assert network_norms[0] < network_norms[1] < network_norms[2] < network_norms[3]
    assert query(16)[network_width:].any()
    assert not query(20)[network_width:].any() and not query(25)[network_width:].any()
    # A known user's query is the network's alone, however short their history.
    known = train.users.index("2")
    movies, stars = train.by_user.of(known)
    for n in (1, 3):
        batch = QueryBatch(np.array([known]), [movies[:n]], [stars[:n]])
        mixed = retriever.query_embeddings(batch)[0]
        assert not mixed[network_width:].any()


def test_saved_and_loaded_the_visitor_answers_stay_the_same(trained, tmp_path):
    _, _, fitted = trained
    rec = movierec.Recommender.from_models(fitted)
    ratings = {"1": 5.0, "30": 2.0}
    before = rec.recommend_for_ratings(ratings, k=8)
    rec.save(tmp_path / "models")
    assert (tmp_path / "models" / "retrieval" / "short_history.npz").is_file()
    after = movierec.load(tmp_path / "models").recommend_for_ratings(ratings, k=8)
    assert list(after["movie_id"]) == list(before["movie_id"])
    assert np.allclose(after["score"], before["score"], atol=1e-5)


def test_the_path_can_be_switched_off(trained):
    _, split, _ = trained
    plain = movierec.train_model(
        "retrieval", split, settings={**SETTINGS, "short_history_length": 0}, refit=False,
        verbose=0,
    )
    assert plain.model._short is None
    width = plain.model.require_network().query_dim
    assert plain.model.candidate_embeddings().shape[1] == width
