"""Synthetic generator: schema, determinism, skew, and a planted signal a model can find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.parquet_format import load_parquet_dataset, write_parquet_shards
from movierec.data.synth import SyntheticGenerator, generate_synthetic
from movierec.errors import DataError, MovierecError

USERS, MOVIES, RATINGS = 1500, 400, 45_000


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(USERS, MOVIES, RATINGS, seed=7)


def test_shapes_and_schema(data):
    r, m, u = data.ratings, data.movies, data.users
    assert len(r) == RATINGS and len(m) == MOVIES and len(u) == USERS
    assert list(r.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert r["rating"].dtype == np.float32 and r["timestamp"].dtype == np.int64
    assert all(pd.api.types.is_string_dtype(r[c]) for c in ("user_id", "movie_id"))
    assert set(r["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not r.duplicated(["user_id", "movie_id"]).any()
    assert r["user_id"].nunique() == USERS  # every user rates something
    assert set(r["movie_id"]) <= set(m["movie_id"]) and set(r["user_id"]) <= set(u["user_id"])
    assert str(m["year"].dtype) == "Int64" and str(u["age"].dtype) == "Int64"
    assert all(isinstance(g, list) and g for g in m["genres"])
    assert m["title"].iloc[0] == f"Synthetic Movie 1 ({m['year'].iloc[0]})"
    assert u["zip"].str.len().eq(5).all() and set(u["gender"]) == {"M", "F"}


def test_same_seed_same_data_other_seed_differs(data):
    again = generate_synthetic(USERS, MOVIES, RATINGS, seed=7)
    pd.testing.assert_frame_equal(data.ratings, again.ratings)
    pd.testing.assert_frame_equal(data.movies, again.movies)
    other = generate_synthetic(USERS, MOVIES, RATINGS, seed=8)
    assert not data.ratings["movie_id"].equals(other.ratings["movie_id"])


def test_popularity_and_activity_are_skewed(data):
    per_movie = data.ratings["movie_id"].value_counts()
    top = per_movie.iloc[: MOVIES // 10].sum() / RATINGS
    assert top > 0.25  # top 10 % of movies hold far more than 10 % of ratings
    per_user = data.ratings["user_id"].value_counts()
    assert per_user.max() > 4 * per_user.median()


def test_genres_follow_the_latent_clusters():
    gen = SyntheticGenerator(10, 400, 100, seed=1)
    movies = gen.movies_table().to_pandas()
    first = [g[0] for g in movies["genres"]]
    agree = pd.crosstab(gen.movie_cluster, np.array(first)).max(axis=1).sum() / len(first)
    assert agree > 0.7


def test_planted_signal_beats_popularity(data):
    """A rank-8 SVD of the train matrix (8 = the planted clusters) finds held-out movies
    much better than popularity (measured: recall@10 0.37 vs 0.24)."""
    r = data.ratings
    u = r["user_id"].astype(int).to_numpy() - 1
    m = r["movie_id"].astype(int).to_numpy() - 1
    test = np.random.default_rng(0).random(len(r)) < 0.2
    train = np.zeros((USERS, MOVIES), np.float32)
    train[u[~test], m[~test]] = 1.0
    held = np.zeros((USERS, MOVIES), bool)
    held[u[test], m[test]] = True

    def recall_at_10(scores: np.ndarray) -> float:
        scores = np.where(train > 0, -np.inf, scores)
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        hits = np.take_along_axis(held, top, axis=1).sum(1)
        n = held.sum(1)
        return float((hits[n > 0] / np.minimum(n[n > 0], 10)).mean())

    popularity = np.broadcast_to(train.sum(0), train.shape)
    left, sing, right = np.linalg.svd(train, full_matrices=False)
    low_rank = (left[:, :8] * sing[:8]) @ right[:8]
    assert recall_at_10(low_rank) > 1.3 * recall_at_10(popularity)


def test_ratings_depend_on_affinity():
    """Stars rise with the planted user-movie affinity (the signal rating models learn)."""
    gen = SyntheticGenerator(800, 300, 20_000, seed=3)
    table = next(gen.rating_tables()).to_pandas()
    u = table["user_id"].astype(int).to_numpy() - 1
    m = table["movie_id"].astype(int).to_numpy() - 1
    affinity = np.einsum("ij,ij->i", gen.user_vec[u], gen.movie_vec[m])
    assert np.corrcoef(affinity, table["rating"])[0, 1] > 0.3


def test_parquet_round_trip_streamed_and_in_memory(tmp_path, data):
    meta = write_parquet_shards(data, tmp_path / "mem", shard_size=10_000)
    assert meta["shards"] == [f"ratings-{i:05d}.parquet" for i in range(5)]
    assert meta["sizes"] == {"ratings": RATINGS, "movies": MOVIES, "users": USERS}
    back = load_parquet_dataset(tmp_path / "mem")
    pd.testing.assert_frame_equal(back.ratings, data.ratings)
    pd.testing.assert_frame_equal(back.movies, data.movies)
    pd.testing.assert_frame_equal(back.users, data.users)

    gen = SyntheticGenerator(USERS, MOVIES, RATINGS, seed=7)
    meta = write_parquet_shards(gen, tmp_path / "stream", shard_size=12_000)
    assert meta["seed"] == 7 and len(meta["shards"]) == 4
    assert meta["schema"]["ratings"]["rating"] == "float"
    streamed = load_parquet_dataset(tmp_path / "stream")
    pd.testing.assert_frame_equal(streamed.ratings, data.ratings)  # same chunks, same data
    assert not list((tmp_path / "stream").glob("*.tmp"))


def test_small_chunks_still_exact_and_duplicate_free():
    gen = SyntheticGenerator(300, 60, 3_000, seed=2, chunk_ratings=500)
    tables = list(gen.rating_tables())
    assert len(tables) > 3
    frame = pd.concat([t.to_pandas() for t in tables])
    assert len(frame) == 3_000 == gen.ratings_written
    assert not frame.duplicated(["user_id", "movie_id"]).any()
    assert frame["user_id"].is_monotonic_increasing is False  # ids are strings: "10" < "2"
    assert frame.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_bad_arguments_and_bad_directories(tmp_path):
    with pytest.raises(MovierecError, match="ratings must be between"):
        SyntheticGenerator(100, 10, 50)
    with pytest.raises(MovierecError, match="ratings must be between"):
        SyntheticGenerator(10, 8, 1_000)
    with pytest.raises(DataError, match="meta.json missing"):
        load_parquet_dataset(tmp_path)
    write_parquet_shards(SyntheticGenerator(20, 20, 60, seed=0), tmp_path / "d")
    (tmp_path / "d" / "ratings-00000.parquet").unlink()
    with pytest.raises(DataError, match="missing"):
        load_parquet_dataset(tmp_path / "d")
