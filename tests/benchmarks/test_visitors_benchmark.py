"""benchmarks/visitors.py: its helpers on small arrays, and its smoke mode end to end on
planted data (slow: trains both default models for one epoch)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from movierec.testing import make_planted_dataset, write_ml_latest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import visitors  # noqa: E402

ROWS = {
    "movierec recommend", "movierec retrieval", "movierec item-item path",
    "movierec deep part", "movierec short-history path", "EASE fold-in, λ 500",
    "EASE fold-in, λ visitor-tuned", "item-kNN",
    "item-kNN, star-weighted", "session-kNN", "popularity", "random",
}
LIGHT_ROWS = {
    "movierec recommend", "movierec retrieval", "EASE, λ tuned", "EASE, λ 500", "item-kNN",
    "popularity",
}


def test_draw_visitors_gives_n_test_ratings_and_keeps_the_rest_relevant():
    by_user = {
        1: (np.arange(10, 20, dtype=np.int32), np.arange(10, dtype=np.float32) % 5 + 1),
        2: (np.arange(30, 35, dtype=np.int32), np.full(5, 4.0, np.float32)),  # too few for n=3
    }
    drawn = visitors.draw_visitors(by_user, 3, 300, seed=42)
    assert [v.user for v in drawn] == [1]
    visitor = drawn[0]
    assert len(visitor.given) == 3 and len(visitor.relevant) == 7
    assert set(visitor.given.tolist()) | visitor.relevant == set(range(10, 20))
    stars = dict(zip(by_user[1][0].tolist(), by_user[1][1].tolist(), strict=True))
    assert visitor.stars.tolist() == [stars[m] for m in visitor.given.tolist()]
    assert visitor.liked == {m for m in visitor.relevant if stars[m] >= 4}
    again = visitors.draw_visitors(by_user, 3, 300, seed=42)[0]
    assert again.given.tolist() == visitor.given.tolist()  # seeded


def test_peers_never_list_the_given_movies_and_stars_can_push_down():
    # Movies 1-3 always rated together, 4-6 together: the cosine knows the two groups.
    from scipy import sparse

    rows = [[1, 2, 3]] * 5 + [[4, 5, 6]] * 5
    matrix = sparse.csr_matrix(
        (np.ones(15 * 2), ([u for u, r in enumerate(rows) for _ in r],
                          [m for r in rows for m in r])), shape=(10, 7),
    )
    matrix.data[:] = 1.0
    cosine = visitors.cosine_matrix(matrix)
    liked = visitors.Visitor(0, np.array([1]), np.array([5.0]), {2}, {2})
    hated = visitors.Visitor(0, np.array([1]), np.array([1.0]), {2}, set())
    for scorer in (visitors.fold_in(cosine), visitors.session_knn(matrix, neighbours=3)):
        ranked = visitors.ranked_lists(scorer([liked]), [liked])[0]
        assert 1 not in ranked and ranked[0] in (2, 3)
    star_weighted = visitors.fold_in(cosine, "stars")([liked, hated])
    assert star_weighted[0, 2] > 0 > star_weighted[1, 2]  # a 1-star rating pushes 2 down


def _planted_with_light_users(directory: Path) -> Path:
    """Four tastes, 60 ratings a user (enough test ratings for n = 10), and every fifth
    user cut to 20 ratings (a light user once 20% go to the test side)."""
    dataset = make_planted_dataset(users=300, movies=300, per_user=60, tastes=4, off_taste=0.1)
    ratings = dataset.ratings
    light = ratings["user_id"].astype(int) % 5 == 0
    kept = ratings[~light | (ratings.groupby("user_id").cumcount() < 20)]
    return write_ml_latest(dataclasses.replace(dataset, ratings=kept), directory)


@pytest.mark.slow
def test_visitors_benchmark_smoke(tmp_path):
    data = _planted_with_light_users(tmp_path / "data")
    out = tmp_path / "visitors.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "visitors.py"), "--smoke", "--data", str(data),
         "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Visitors: ndcg@10" in result.stdout and "Light users" in result.stdout
    report = json.loads(out.read_text())
    rows = report["mean"]["visitors"]
    assert set(rows) == ROWS
    for label, columns in rows.items():
        assert set(columns) == {"1", "3", "5", "10"}, label
        assert all(0.0 <= cells["ndcg@10"][0] <= 1.0 for cells in columns.values()), label
    assert set(report["mean"]["light_users"]) == LIGHT_ROWS
    ndcg = {label: [columns[n]["ndcg@10"][0] for n in ("3", "5", "10")]
            for label, columns in rows.items()}
    # The planted tastes are there to be found from a visitor's own ratings.
    for peer in ("item-kNN", "EASE fold-in, λ 500", "session-kNN"):
        assert np.mean(ndcg[peer]) > 2 * np.mean(ndcg["random"]), (peer, ndcg)
        assert np.mean(ndcg[peer]) > np.mean(ndcg["popularity"]), (peer, ndcg)
