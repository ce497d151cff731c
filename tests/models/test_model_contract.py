"""The contract every retriever and every ranker in the registry keeps.

Each model, with small settings, on the planted data set (two taste groups, each
liking one half of the catalogue): it learns the planted taste, saves and loads to
identical answers, refuses ids it does not know, never recommends a watched movie,
trains to the same answers with the same seed, and refuses saved settings it does
not know. A new model added to :mod:`movierec.models.registry` runs these as well;
the checks themselves are :mod:`movierec.testing.contract`.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.splits import random_split
from movierec.data.training import TrainingSet
from movierec.models.artifacts import load_model, save_model
from movierec.pipeline import Recommender
from movierec.testing import contract, make_planted_dataset

MODELS = contract.registered_models()
#: The determinism check trains a model a second time: slow for the real models.
HEAVY = {("retrieval", "two-tower"), ("ranking", "dcn")}


def test_every_registered_model_has_contract_settings():
    assert set(contract.SMALL_SETTINGS) == set(MODELS)


@pytest.fixture(scope="session")
def planted():
    dataset = make_planted_dataset()
    split = random_split(dataset.ratings, test_fraction=0.2, seed=0)
    return dataset, split, TrainingSet.build(dataset, split.train)


@pytest.fixture(scope="session")
def fitted(planted):
    """Each model trained once for the whole session, on demand."""
    cache = {}

    def get(key):
        if key not in cache:
            cache[key] = contract.fit_small(key, planted[2])
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


@pytest.mark.parametrize("key", [k for k in MODELS if k[0] == "retrieval"], ids="-".join)
def test_retriever_learns_the_planted_taste(key, planted, saved):
    _, split, _ = planted
    recommender = Recommender(load_model(saved(key)), None)
    contract.check_retriever_learns_the_planted_taste(
        recommender, split.test["user_id"].unique()[:40]
    )


@pytest.mark.parametrize("key", [k for k in MODELS if k[0] == "ranking"], ids="-".join)
def test_ranker_beats_the_global_mean(key, planted, fitted):
    _, split, train = planted
    contract.check_ranker_beats_the_global_mean(fitted(key), train, split.test)


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_save_and_load_give_identical_answers(key, planted, fitted, saved):
    contract.check_save_and_load_give_identical_answers(fitted(key), planted[2], saved(key))
    assert load_model(saved(key)).manifest["split"] == planted[1].info


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_unknown_ids_are_refused_and_seen_movies_excluded(key, planted, saved):
    _, split, _ = planted
    retrieval_key = key if key[0] == "retrieval" else ("retrieval", "example")
    ranking = load_model(saved(key)) if key[0] == "ranking" else None
    recommender = Recommender(load_model(saved(retrieval_key)), ranking)
    contract.check_unknown_ids_are_refused_and_seen_movies_excluded(recommender, split.train)


@pytest.mark.parametrize(
    "key",
    [pytest.param(k, marks=pytest.mark.slow) if k in HEAVY else k for k in MODELS],
    ids="-".join,
)
def test_same_seed_gives_the_same_model(key, planted, fitted):
    contract.check_same_seed_gives_the_same_model(key, planted[2], fitted(key))


@pytest.mark.parametrize("key", MODELS, ids="-".join)
def test_load_refuses_settings_this_version_does_not_know(key, saved, tmp_path):
    contract.check_load_refuses_unknown_settings(saved(key), tmp_path)


def test_the_contract_fails_a_ranker_that_learned_nothing(planted):
    """The checks can fail: a ranker that gives everyone 3 stars does not beat the mean."""
    _, split, train = planted
    with pytest.raises(AssertionError, match="not below the global mean"):
        contract.check_ranker_beats_the_global_mean(_Constant(3.0), train, split.test)


class _Constant:
    """A ranker that predicts the same stars for every pair."""

    kind = "ranking"

    def __init__(self, stars: float):
        self.stars = stars

    def predict(self, queries, movies) -> np.ndarray:
        return np.full(len(movies), self.stars, dtype=np.float32)
