"""The contract every retriever and every ranker in the registry keeps.

Each model, with small settings, on the planted data set (two taste groups, each
liking one half of the catalogue): it learns the planted taste, saves and loads to
identical answers, refuses ids it does not know, never recommends a watched movie,
trains to the same answers with the same seed, and refuses saved settings it does
not know. A new model added to :mod:`movierec.models.registry` runs these as well.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import make_planted_dataset, movie_taste, user_taste

from movierec.data.splits import random_split
from movierec.data.training import TrainingSet
from movierec.errors import ModelError, UnknownIdError
from movierec.models.artifacts import load_model, save_model
from movierec.models.base import QueryBatch
from movierec.models.registry import RANKERS, RETRIEVERS, model_class
from movierec.pipeline import Recommender

#: Settings small enough for a few seconds of training each, per model.
SMALL = {
    ("retrieval", "two-tower"): {"epochs": 8, "batch_size": 32, "embedding_dim": 16,
                                 "feature_dim": 4, "hidden_dim": 16, "learning_rate": 1e-2,
                                 "item_item_rank": 16, "seed": 5},
    ("retrieval", "example"): {"epochs": 30, "batch_size": 64, "seed": 5},
    ("ranking", "dcn"): {"epochs": 6, "embedding_dim": 8, "hidden_units": 16,
                         "users_per_batch": 32, "members": 1, "seed": 5},
    ("ranking", "example"): {"epochs": 40, "batch_size": 64, "seed": 5},
}  # fmt: skip
MODELS = [("retrieval", n) for n in RETRIEVERS] + [("ranking", n) for n in RANKERS]
#: The determinism check trains a model a second time: slow for the real models.
HEAVY = {("retrieval", "two-tower"), ("ranking", "dcn")}


def test_every_registered_model_has_contract_settings():
    assert set(SMALL) == set(MODELS)


@pytest.fixture(scope="session")
def planted():
    dataset = make_planted_dataset()
    split = random_split(dataset.ratings, test_fraction=0.2, seed=0)
    return dataset, split, TrainingSet.build(dataset, split.train)


def _fit(key, train):
    kind, name = key
    model = model_class(kind, name)(**SMALL[key])
    model.fit(train, verbose=0)
    return model


@pytest.fixture(scope="session")
def fitted(planted):
    """Each model trained once for the whole session, on demand."""
    cache = {}

    def get(key):
        if key not in cache:
            cache[key] = _fit(key, planted[2])
        return cache[key]

    return get


@pytest.fixture(scope="session")
def saved(planted, fitted, tmp_path_factory):
    """Each model saved once for the whole session, on demand: its directory."""
    _, split, train = planted
    cache = {}

    def get(key):
        if key not in cache:
            directory = tmp_path_factory.mktemp("contract") / key[0]
            save_model(fitted(key), train, directory, split=split.info)
            cache[key] = directory
        return cache[key]

    return get


def _group(movie_ids) -> np.ndarray:
    return np.array([movie_taste(m) for m in movie_ids])


def _answers(model, train) -> np.ndarray:
    """What a model says about every known user: query scores of every movie for a
    retriever, predicted stars of every (user, movie) pair for a ranker."""
    users = np.arange(1, train.users.size, dtype=np.int32)
    queries = QueryBatch.from_training(train, users)
    if model.kind == "retrieval":
        return model.query_embeddings(queries) @ model.candidate_embeddings().T
    movies = np.arange(1, train.movies.size, dtype=np.int32)
    pairs = queries.take(np.repeat(np.arange(len(users)), len(movies)))
    return model.predict(pairs, np.tile(movies, len(users)))


@pytest.mark.parametrize("key", [k for k in MODELS if k[0] == "retrieval"], ids="-".join)
def test_retriever_learns_the_planted_taste(key, planted, saved):
    _, split, train = planted
    recommender = Recommender(load_model(saved(key)), None)
    shares = []
    for user in split.test["user_id"].unique()[:40]:
        top = [r.movie_id for r in recommender.recommend(user, k=10).items]
        shares.append(np.mean(_group(top) == user_taste(user)))
    # Chance is 0.5: half the catalogue is each group's.
    assert np.mean(shares) > 0.75


@pytest.mark.parametrize("key", [k for k in MODELS if k[0] == "ranking"], ids="-".join)
def test_ranker_beats_the_global_mean(key, planted, fitted):
    _, split, train = planted
    model = fitted(key)
    test = split.test
    queries = QueryBatch.from_training(train, train.users.lookup(test["user_id"]))
    predicted = model.predict(queries, train.movies.lookup(test["movie_id"]))
    actual = test["rating"].to_numpy()
    constant = np.sqrt(np.mean((actual - train.rating.mean()) ** 2))
    assert np.sqrt(np.mean((predicted - actual) ** 2)) < constant


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_save_and_load_give_identical_answers(key, planted, fitted, saved):
    _, _, train = planted
    loaded = load_model(saved(key))
    assert loaded.model.settings == fitted(key).settings
    np.testing.assert_allclose(
        _answers(loaded.model, loaded.train), _answers(fitted(key), train), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_unknown_ids_are_refused_and_seen_movies_excluded(key, planted, saved):
    _, split, train = planted
    retrieval_key = key if key[0] == "retrieval" else ("retrieval", "example")
    ranking = load_model(saved(key)) if key[0] == "ranking" else None
    recommender = Recommender(load_model(saved(retrieval_key)), ranking)
    with pytest.raises(UnknownIdError):
        recommender.recommend("no-such-user", k=5)
    if ranking is not None:
        with pytest.raises(UnknownIdError):
            recommender.rank("1", ["no-such-movie"])
        with pytest.raises(UnknownIdError):
            recommender.rank("no-such-user", ["1"])
    with pytest.raises(UnknownIdError):
        recommender.similar("no-such-movie", k=5)
    for user in ("1", "2", "3"):
        seen = set(split.train.loc[split.train["user_id"] == user, "movie_id"])
        shown = [r.movie_id for r in recommender.recommend(user, k=20).items]
        assert shown and not seen & set(shown)
        kept = [r.movie_id for r in recommender.recommend(user, k=60, exclude_seen=False).items]
        assert seen & set(kept)  # the exclusion is what removed them


@pytest.mark.parametrize(
    "key",
    [pytest.param(k, marks=pytest.mark.slow) if k in HEAVY else k for k in MODELS],
    ids="-".join,
)
def test_same_seed_gives_the_same_model(key, planted, fitted):
    _, _, train = planted
    np.testing.assert_allclose(
        _answers(_fit(key, train), train), _answers(fitted(key), train), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_load_refuses_settings_this_version_does_not_know(key, saved, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved(key), copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["settings"]["retired_setting"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retired_setting"):
        load_model(copy)
