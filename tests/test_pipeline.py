"""The two-stage Recommender and the evaluation of both stages together."""

import numpy as np
import pytest

from movierec.baselines import EASE, Popularity
from movierec.errors import UnknownIdError
from movierec.evaluation.evaluate import evaluate_scores, evaluate_two_stage
from movierec.models.artifacts import load_model, save_model
from movierec.pipeline import Recommender
from movierec.ranking.blend import blend_scores


@pytest.fixture(scope="module")
def setup(example_pair):
    from movierec.testing import make_planted_dataset

    root, split, train, retriever, ranker = example_pair
    return make_planted_dataset(), split, train, retriever, ranker, Recommender.load(root)


def test_recommend_excludes_history_and_explains(setup):
    _, _, _, _, _, recommender = setup
    answer = recommender.recommend("2", k=5)
    watched = set(recommender.history("2"))
    assert len(answer.items) == 5 and watched
    assert not watched & {item.movie_id for item in answer.items}
    assert all(item.predicted_rating is not None and item.title for item in answer.items)
    assert set(answer.timings_ms) == {"retrieval", "ranking", "total"}


def test_new_ratings_count_at_once(setup):
    _, _, _, _, _, recommender = setup
    before = {item.movie_id for item in recommender.recommend("2", k=5).items}
    first = sorted(before)[0]
    after = recommender.recommend("2", k=5, extra_ratings=[(first, 5.0)])
    assert first not in {item.movie_id for item in after.items}


def test_visitor_with_ratings_only_and_unknown_ids(setup):
    _, _, _, _, _, recommender = setup
    answer = recommender.recommend(None, k=3, extra_ratings=[("1", 5.0), ("2", 4.0)])
    assert len(answer.items) == 3
    assert {"1", "2"}.isdisjoint(item.movie_id for item in answer.items)
    with pytest.raises(UnknownIdError):
        recommender.recommend("no-such-user")
    with pytest.raises(UnknownIdError):
        recommender.similar("no-such-movie")
    with pytest.raises(UnknownIdError):
        recommender.recommend(None, extra_ratings=[("no-such-movie", 3.0)])


def test_similar_and_search(setup):
    _, _, _, _, _, recommender = setup
    similar = recommender.similar("1", k=5)
    assert len(similar) == 5 and "1" not in {m.movie_id for m in similar}
    assert [m.movie_id for m in recommender.search("planted 17")] == ["17"]


def test_blend_orders_by_both_stages():
    retrieval = np.array([[3.0, 2.0, 1.0]])
    stars = np.array([[1.0, 5.0, 5.0]])
    assert np.argsort(-blend_scores(retrieval, stars, 0.0))[0].tolist() == [0, 1, 2]
    assert np.argsort(-blend_scores(retrieval, stars, 1.0))[0].tolist() == [1, 2, 0]


def test_two_stage_and_baselines_evaluate(setup):
    _, split, train, retriever, ranker, _ = setup
    two_stage = evaluate_two_stage(retriever, ranker, train, split.test, depth=20)
    assert two_stage["users"] > 0
    ease = evaluate_scores(EASE(train, l2=10.0), train, split.test, ks=(10,))["ndcg@10"]
    popular = evaluate_scores(Popularity(train), train, split.test, ks=(10,))["ndcg@10"]
    assert ease > popular  # the planted taste groups are learnable
    # Against the same yardstick (4+ stars relevant): the two stages find the movies a
    # user's taste group likes, which popularity, the same for everyone, cannot.
    liked = evaluate_scores(Popularity(train), train, split.test, ks=(10,), min_rating=4.0)
    assert two_stage["ndcg@10"] > liked["ndcg@10"]


def test_saved_model_reloads_same_scores(setup, tmp_path):
    _, split, train, retriever, _, _ = setup
    save_model(retriever, train, tmp_path / "r", split=split.info)
    loaded = load_model(tmp_path / "r")
    np.testing.assert_allclose(loaded.retriever.candidate_embeddings(), loaded.candidates)
