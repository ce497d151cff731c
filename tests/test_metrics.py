"""Metric functions against values computed by hand."""

import math

import numpy as np
import pytest

from movierec.metrics import (
    catalogue_coverage,
    mae,
    relevant_sets,
    rmse,
    sample_users,
    top_k_metrics,
)
from movierec.retrieval.topk import top_k


def test_top_k_metrics_hand_computed():
    # user A: relevant {1, 3}, ranked [1, 2, 3]: hits at ranks 1 and 3
    # user B: relevant {9}, ranked [4, 5, 6]: no hit
    # user C: no relevant items -> ignored
    m = top_k_metrics([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [{1, 3}, {9}, set()], k=3)
    dcg_a = 1 + 1 / math.log2(4)
    idcg_a = 1 + 1 / math.log2(3)
    assert m["recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["hit_rate"] == pytest.approx(0.5)
    assert m["ndcg"] == pytest.approx((dcg_a / idcg_a) / 2)
    assert m["map"] == pytest.approx(((1 / 1 + 2 / 3) / 2) / 2)


def test_top_k_metrics_cut_at_k_and_perfect_list():
    m = top_k_metrics([[5, 6, 7, 8]], [{5, 6}], k=2)
    assert m["ndcg"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(1.0)
    m1 = top_k_metrics([[7, 5, 6]], [{5, 6}], k=1)
    assert m1["hit_rate"] == 0.0 and m1["ndcg"] == 0.0


def test_top_k_metrics_rejects_bad_input():
    with pytest.raises(ValueError):
        top_k_metrics([[1]], [{1}], k=0)
    with pytest.raises(ValueError):
        top_k_metrics([[1]], [{1}, {2}], k=1)


def test_rmse_mae_coverage():
    assert rmse(np.array([1.0, 3.0]), np.array([2.0, 5.0])) == pytest.approx(math.sqrt(2.5))
    assert mae(np.array([1.0, 3.0]), np.array([2.0, 5.0])) == pytest.approx(1.5)
    assert catalogue_coverage([[1, 2], [2, 3]], n_movies=6) == pytest.approx(0.5)


def test_top_k_orders_excludes_and_pads():
    scores = np.array([[0.0, 0.9, 0.1, 0.5], [0.0, 0.2, 0.8, 0.3]])
    values, indices = top_k(scores, 2, exclude=[np.array([1]), np.array([], dtype=int)])
    assert indices.tolist() == [[3, 2], [2, 3]]  # column 0 never returned
    assert values[0, 0] == pytest.approx(0.5)
    _, padded = top_k(scores, 5, exclude=[np.array([1, 2, 3]), np.array([])])
    assert padded[0].tolist() == [-1] * 5
    assert padded[1].tolist()[:3] == [2, 3, 1] and padded[1].tolist()[3:] == [-1, -1]


def test_relevant_sets_group_pairs_by_user_and_sample_users_bounds_them():
    users, relevant = relevant_sets(np.array([3, 1, 3, 1, 2]), np.array([7, 5, 8, 6, 9]))
    assert users.tolist() == [1, 2, 3] and relevant == [{5, 6}, {9}, {7, 8}]
    assert relevant_sets(np.array([], np.int32), np.array([], np.int32))[1] == []
    everyone = np.arange(1, 11)
    assert sample_users(everyone, 10, np.random.default_rng(0)) is everyone
    picked = sample_users(everyone, 4, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 4 and np.all(np.diff(picked) > 0)
    assert set(picked.tolist()) <= set(everyone.tolist())
    np.testing.assert_array_equal(picked, sample_users(everyone, 4, np.random.default_rng(0)))
