"""The session-weighted item-item path: plain EASE at window 0, and closeness in time counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.baselines import EASE, interaction_matrix
from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.retrieval.item_item import item_item_weights, session_gram

K, SAME_SESSION_USERS, FAR_APART_USERS = 4, 3, 6
DAY = 86_400


def _sessions_dataset() -> Dataset:
    """Movie a_k is rated in the same minute as b_k by a few users, and 100 days apart from
    c_k by twice as many: plain co-rating counts favour c_k, closeness in time b_k."""
    rows = []
    clock = 1_000_000_000
    for k in range(K):
        for _ in range(SAME_SESSION_USERS):
            user = f"u{len(rows)}"
            rows += [(user, f"a{k}", 4.0, clock), (user, f"b{k}", 4.0, clock + 60)]
            clock += 7 * DAY
        for _ in range(FAR_APART_USERS):
            user = f"u{len(rows)}"
            rows += [(user, f"a{k}", 4.0, clock), (user, f"c{k}", 4.0, clock + 100 * DAY)]
            clock += 7 * DAY
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    ids = sorted(set(ratings["movie_id"]))
    movies = pd.DataFrame(
        {"movie_id": ids, "title": ids, "year": pd.array([None] * len(ids), dtype="Int64"),
         "genres": [[] for _ in ids]}
    )
    return Dataset("sessions", ratings, movies)


def _train() -> TrainingSet:
    dataset = _sessions_dataset()
    return TrainingSet.build(dataset, dataset.ratings)


@pytest.mark.parametrize(("window", "far"), [(0.0, 0.0), (1800.0, 1.0)])
def test_no_window_or_full_far_weight_is_plain_ease(window, far):
    train = _train()
    matrix = interaction_matrix(train)
    np.testing.assert_allclose(session_gram(train, window, far), (matrix.T @ matrix).toarray())
    np.testing.assert_allclose(
        item_item_weights(train, 5.0, window, far),
        EASE(train, l2=5.0).weights,
        rtol=1e-5,
        atol=1e-6,
    )


def test_co_ratings_count_by_closeness_in_time():
    train = _train()
    index = train.movies.index
    gram = session_gram(train, 1800.0, 0.25)
    a, b, c = index("a0"), index("b0"), index("c0")
    assert gram[a, a] == SAME_SESSION_USERS + FAR_APART_USERS  # a movie meets itself at gap 0
    assert np.isclose(gram[a, b], SAME_SESSION_USERS * (0.25 + 0.75 * np.exp(-60 / 1800)))
    assert np.isclose(gram[a, c], FAR_APART_USERS * 0.25)  # 100 days apart: the far weight
    assert np.allclose(gram, gram.T) and np.linalg.eigvalsh(gram).min() > -1e-9


def test_session_weights_pick_the_same_session_partner():
    train = _train()
    index = train.movies.index
    plain = item_item_weights(train, 1.0, 1800.0, 1.0)
    sessions = item_item_weights(train, 1.0, 1800.0, 0.25)
    for k in range(K):
        a, b, c = index(f"a{k}"), index(f"b{k}"), index(f"c{k}")
        assert plain[a, c] > plain[a, b]  # counting alone: the far-apart decoy
        assert sessions[a, b] > sessions[a, c]  # closeness in time: the partner


def test_summing_pairs_in_small_batches_changes_nothing(monkeypatch):
    from movierec.retrieval import item_item

    train = _train()
    whole = session_gram(train, 1800.0, 0.25)
    monkeypatch.setattr(item_item, "_PAIRS_PER_BATCH", 3)
    np.testing.assert_allclose(session_gram(train, 1800.0, 0.25), whole)
