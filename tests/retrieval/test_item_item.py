"""The item-item path: low-rank EASE on a session-weighted Gram matrix.

Exact EASE at full rank and window 0, closeness in time counts, lambda chosen on held-out
ratings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from movierec.baselines import EASE
from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.retrieval.item_item import (
    LAMBDA_GRID,
    LowRankEASE,
    SessionGram,
    ease_weights,
    fit_item_item,
    interaction_matrix,
    session_gram,
    top_eigenpairs,
)

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


def _ease_tables(train: TrainingSet, l2: float, window: float, far: float, rank: int):
    gram = session_gram(train, window, far)
    return LowRankEASE(*top_eigenpairs(gram, rank, seed=0)).tables(l2)


def _unseen_scores(train: TrainingSet, query: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Scores of movies each user has not rated (rated ones set to 0 for comparison)."""
    matrix = interaction_matrix(train)
    scores = np.asarray(matrix @ query) @ candidate.T
    return np.where(matrix.toarray() > 0, 0.0, scores)


@pytest.mark.parametrize(("window", "far"), [(0.0, 0.0), (1800.0, 1.0)])
def test_no_window_or_full_far_weight_is_plain_ease(window, far):
    train = _train()
    matrix = interaction_matrix(train)
    np.testing.assert_allclose(
        session_gram(train, window, far).dense(), (matrix.T @ matrix).toarray()
    )
    # Full rank: the eigen form of EASE scores every unrated movie as the exact inverse does.
    query, candidate = _ease_tables(train, 5.0, window, far, rank=train.movies.size)
    exact = np.asarray(matrix @ ease_weights((matrix.T @ matrix).toarray(), 5.0))
    expected = np.where(matrix.toarray() > 0, 0.0, exact)
    np.testing.assert_allclose(_unseen_scores(train, query, candidate), expected, atol=1e-5)


def test_randomized_eigenpairs_match_the_dense_solver():
    rng = np.random.default_rng(3)
    # A spectrum that decays like real co-rating data's, so the top 10 stand out.
    left, _ = np.linalg.qr(rng.standard_normal((300, 120)))
    right, _ = np.linalg.qr(rng.standard_normal((120, 120)))
    x = sparse.csr_matrix(left @ np.diag(10.0 * 0.8 ** np.arange(120)) @ right.T)
    gram = SessionGram(x, None, 1.0)
    values, vectors = top_eigenpairs(gram, 10, seed=0, power_iterations=4, oversample=20)
    exact = np.sort(np.linalg.eigvalsh(gram.dense()))[::-1][:10]
    np.testing.assert_allclose(values, exact, rtol=1e-3)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(10), atol=1e-6)
    # Each returned vector is an eigenvector: G v = s v.
    np.testing.assert_allclose(gram @ vectors, vectors * values, atol=1e-3 * values[0])


def test_low_rank_ease_approaches_exact_ease_as_rank_grows():
    train = _train()
    matrix = interaction_matrix(train)
    exact = np.asarray(matrix @ ease_weights((matrix.T @ matrix).toarray(), 2.0))
    exact = np.where(matrix.toarray() > 0, 0.0, exact)
    errors = []
    for rank in (2, 6, train.movies.size):
        query, candidate = _ease_tables(train, 2.0, 0.0, 1.0, rank)
        errors.append(np.abs(_unseen_scores(train, query, candidate) - exact).max())
    assert errors[0] > errors[-1] and errors[-1] < 1e-5


def test_co_ratings_count_by_closeness_in_time():
    train = _train()
    index = train.movies.index
    gram = session_gram(train, 1800.0, 0.25).dense()
    a, b, c = index("a0"), index("b0"), index("c0")
    assert gram[a, a] == SAME_SESSION_USERS + FAR_APART_USERS  # a movie meets itself at gap 0
    assert np.isclose(gram[a, b], SAME_SESSION_USERS * (0.25 + 0.75 * np.exp(-60 / 1800)))
    assert np.isclose(gram[a, c], FAR_APART_USERS * 0.25)  # 100 days apart: the far weight
    assert np.allclose(gram, gram.T) and np.linalg.eigvalsh(gram).min() > -1e-9
    block = np.random.default_rng(0).standard_normal((train.movies.size, 3))
    np.testing.assert_allclose(session_gram(train, 1800.0, 0.25) @ block, gram @ block)


def test_session_weights_pick_the_same_session_partner():
    train = _train()
    index = train.movies.index
    n = train.movies.size
    plain = _ease_tables(train, 1.0, 1800.0, 1.0, n)
    sessions = _ease_tables(train, 1.0, 1800.0, 0.25, n)
    for k in range(K):
        a, b, c = index(f"a{k}"), index(f"b{k}"), index(f"c{k}")
        plain_row = plain[0][a] @ plain[1].T  # what having rated a predicts
        session_row = sessions[0][a] @ sessions[1].T
        assert plain_row[c] > plain_row[b]  # counting alone: the far-apart decoy
        assert session_row[b] > session_row[c]  # closeness in time: the partner


def test_summing_pairs_in_small_batches_changes_nothing(monkeypatch):
    from movierec.retrieval import item_item

    train = _train()
    whole = session_gram(train, 1800.0, 0.25).dense()
    monkeypatch.setattr(item_item, "_PAIRS_PER_BATCH", 3)
    np.testing.assert_allclose(session_gram(train, 1800.0, 0.25).dense(), whole)


def test_lambda_is_chosen_on_held_out_ratings_and_recorded():
    train = _train()
    chosen = fit_item_item(train, rank=8, window_seconds=1800.0, far_weight=0.25, seed=0)
    assert set(chosen.validation_ndcg) == set(LAMBDA_GRID)
    best = max(chosen.validation_ndcg, key=lambda k: (chosen.validation_ndcg[k], k))
    assert np.isclose(chosen.l2, best / 0.9)
    given = fit_item_item(train, rank=8, window_seconds=1800.0, far_weight=0.25, seed=0, l2=7.0)
    assert given.l2 == 7.0 and not given.validation_ndcg
    assert given.query_table.shape == given.candidate_table.shape == (train.movies.size, 8)


def test_ease_baseline_chooses_its_lambda_unless_given():
    train = _train()
    assert EASE(train, l2=3.0).l2 == 3.0
    assert EASE(train).l2 in {g / 0.9 for g in LAMBDA_GRID}
