"""benchmarks/next_item.py's pieces that need no training: the leave-last-one split it
scores and the scoring of an external peer's top-N lists by movierec's metric code."""

import sys
from pathlib import Path

import numpy as np

from movierec.data import make_split
from movierec.data.training import TrainingSet
from movierec.evaluation.evaluate import evaluate_scores
from movierec.testing import make_planted_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import next_item  # noqa: E402


def _split():
    data = make_planted_dataset()
    split = make_split(data.ratings, "leave-last-n", n=1)
    return data, split, TrainingSet.build(data, split.train)


def test_external_lists_are_scored_as_given_and_a_perfect_list_is_a_perfect_score():
    data, split, train = _split()
    test = split.test
    perfect = {str(u): [str(m)] for u, m in zip(test["user_id"], test["movie_id"], strict=True)}
    best = evaluate_scores(next_item.ranked_scores(perfect, train), train, test, ks=(10,))
    assert best["hit_rate@10"] == 1.0 and best["ndcg@10"] == 1.0
    # The test movie second in every list: every hit at rank 2, NDCG = 1 / log2(3).
    train_movies = set(map(str, split.train["movie_id"]))
    second = {}
    for user, movie in perfect.items():
        seen = set(map(str, split.train.loc[split.train["user_id"].astype(str) == user,
                                            "movie_id"]))  # fmt: skip
        other = next(m for m in sorted(train_movies) if m not in seen and m != movie[0])
        second[user] = [other, movie[0]]
    scored = evaluate_scores(next_item.ranked_scores(second, train), train, test, ks=(10,))
    assert scored["hit_rate@10"] == 1.0
    assert np.isclose(scored["ndcg@10"], 1 / np.log2(3))

