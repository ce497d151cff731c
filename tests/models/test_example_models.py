"""The keras-rs examples' models, run through movierec on a small planted data set."""

import numpy as np

from movierec.data.splits import random_split
from movierec.data.training import TrainingSet
from movierec.evaluation.evaluate import evaluate_ranker, evaluate_retriever
from movierec.models.artifacts import load_model, save_model
from movierec.ranking.example import ExampleRanker
from movierec.retrieval.example import ExampleRetriever


def test_example_ranker_learns_and_round_trips(planted_dataset, tmp_path):
    split = random_split(planted_dataset.ratings, test_fraction=0.2, seed=1)
    train = TrainingSet.build(planted_dataset, split.train)
    model = ExampleRanker(epochs=20, batch_size=64, seed=3)
    model.fit(train, verbose=0)
    trained = evaluate_ranker(model, train, split.test)["rmse"]
    constant = float(np.sqrt(np.mean((split.test["rating"] - split.train["rating"].mean()) ** 2)))
    assert trained < constant

    save_model(model, train, tmp_path / "ranking", split=split.info)
    loaded = load_model(tmp_path / "ranking")
    assert evaluate_ranker(loaded.ranker, loaded.train, split.test)["rmse"] == trained
    assert loaded.manifest["split"]["seed"] == 1
    assert loaded.manifest["settings"]["epochs"] == 20


def test_example_retriever_beats_untrained(planted_dataset, tmp_path):
    split = random_split(planted_dataset.ratings, test_fraction=0.2, seed=1)
    train = TrainingSet.build(planted_dataset, split.train)
    untrained = ExampleRetriever(epochs=1, learning_rate=1e-6, seed=3)
    untrained.fit(train, verbose=0)
    model = ExampleRetriever(epochs=30, batch_size=64, seed=3)
    model.fit(train, verbose=0)
    # The example regresses ratings: the relevant test items are those rated highly.
    good = evaluate_retriever(model, train, split.test, ks=(10,), min_rating=4)["ndcg@10"]
    base = evaluate_retriever(untrained, train, split.test, ks=(10,), min_rating=4)["ndcg@10"]
    assert good > base

    save_model(model, train, tmp_path / "retrieval", split=split.info)
    loaded = load_model(tmp_path / "retrieval")
    np.testing.assert_allclose(loaded.candidates, model.candidate_embeddings())
