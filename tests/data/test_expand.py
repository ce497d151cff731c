"""Fractal expansion (`movierec data expand`): sizes, shape, randomization, format, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from movierec.cli.main import main
from movierec.data import Dataset, load_dataset
from movierec.data.expand import FractalExpansion, write_expansion
from movierec.data.parquet_format import load_parquet_dataset, write_parquet_shards
from movierec.data.vocab import natural_order
from movierec.errors import MovierecError

USERS, MOVIES = 150, 90
K, L = 6, 4


def skewed_source(seed: int = 0, with_users: bool = True) -> Dataset:
    """A small set with MovieLens' skew: Pareto activity (5 to 60 ratings a user), Zipf
    popularity, half stars, two planted tastes, and 5 catalogue movies nobody rated."""
    rng = np.random.default_rng(seed)
    rated = MOVIES - 5
    popularity = 1.0 / np.arange(1, rated + 1) ** 0.9
    counts = np.clip((rng.pareto(1.3, USERS) + 1) * 6, 5, 60).astype(int)
    rows = []
    for u in range(USERS):
        taste = u % 2
        weight = popularity * np.where(np.arange(rated) % 2 == taste, 3.0, 1.0)
        movies = rng.choice(rated, counts[u], replace=False, p=weight / weight.sum())
        for k, m in enumerate(movies):
            stars = rng.choice([3.5, 4.0, 4.5, 5.0] if m % 2 == taste else [0.5, 1.5, 2.0, 3.0])
            rows.append((str(u + 1), str(m + 1), stars, 1_000_000_000 + 3600 * k + u))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).astype(
        {"rating": "float32", "timestamp": "int64"}
    )
    ids = [str(m) for m in range(1, MOVIES + 1)]
    movies = pd.DataFrame(
        {
            "movie_id": ids,
            "title": [f"Film {m} ({1980 + int(m) % 30})" for m in ids],
            "year": pd.array([1980 + int(m) % 30 for m in ids], dtype="Int64"),
            "genres": [["Drama"] if int(m) % 2 else ["Comedy", "Romance"] for m in ids],
        }
    )
    users = None
    if with_users:
        users = pd.DataFrame(
            {
                "user_id": [str(u) for u in range(1, USERS + 1)],
                "age": pd.array([18 + u % 40 for u in range(USERS)], dtype="Int64"),
                "gender": ["F" if u % 2 else "M" for u in range(USERS)],
                "occupation": ["writer"] * USERS,
                "zip": [f"{10000 + u}" for u in range(USERS)],
            }
        )
    return Dataset("skewed", ratings, movies, users, rating_scale=(0.5, 5.0))


@pytest.fixture(scope="module")
def source() -> Dataset:
    return skewed_source()


@pytest.fixture(scope="module")
def expanded(source, tmp_path_factory):
    """The source expanded K x L (seed 3) and read back from its shards."""
    out = tmp_path_factory.mktemp("expanded") / "set"
    expansion = FractalExpansion(source, K, L, seed=3, chunk_ratings=500)
    meta = write_expansion(expansion, out, shard_size=2_000)
    return expansion, meta, load_parquet_dataset(out), out


def gini(counts: np.ndarray) -> float:
    x = np.sort(np.asarray(counts, np.float64))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def per_user(dataset: Dataset) -> np.ndarray:
    return dataset.ratings["user_id"].value_counts().to_numpy()


def per_movie(dataset: Dataset) -> np.ndarray:
    return dataset.ratings["movie_id"].value_counts().to_numpy()


def test_sizes_scale_with_the_multipliers(source, expanded):
    expansion, meta, data, _ = expanded
    nnz = len(source.ratings)
    # default: each user copy keeps its source's expected count, so ratings grow K times
    assert abs(len(data.ratings) - K * nnz) < 0.05 * K * nnz
    assert meta["sizes"]["ratings"] == len(data.ratings) == expansion.ratings_written
    assert len(data.movies) == L * MOVIES and len(data.users) == K * USERS
    assert data.ratings["user_id"].nunique() > 0.98 * K * USERS
    assert len(meta["shards"]) == -(-len(data.ratings) // 2_000)
    # an explicit target is met too (here twice the default density)
    bigger = FractalExpansion(source, K, L, ratings=2 * K * nnz, seed=3)
    total = sum(t.num_rows for t in bigger.rating_tables())
    assert abs(total - 2 * K * nnz) < 0.05 * 2 * K * nnz


def test_count_distributions_keep_the_source_shape(source, expanded):
    """Per-user and per-movie Gini stay near the source's; a uniform-random set of the
    same size does not (the shape is the method's doing, not any big set's)."""
    _, _, data, _ = expanded
    rng = np.random.default_rng(0)
    n = len(data.ratings)
    uniform_users = np.bincount(rng.integers(0, K * USERS, n), minlength=K * USERS)
    uniform_movies = np.bincount(rng.integers(0, L * (MOVIES - 5), n), minlength=L * (MOVIES - 5))
    for ours, src, uniform in (
        (per_user(data), per_user(source), uniform_users),
        (per_movie(data), per_movie(source), uniform_movies),
    ):
        assert abs(gini(ours) - gini(src)) < 0.06
        assert abs(gini(uniform) - gini(src)) > 0.2
        for q in (0.25, 0.5, 0.9):  # quantiles scale as the counts do
            scale = np.mean(ours) / np.mean(src)
            assert np.quantile(ours, q) == pytest.approx(scale * np.quantile(src, q), rel=0.3)
    # each copy's count follows its source user's
    frame = data.ratings
    copy_of = (frame["user_id"].astype(int) - 1) % USERS
    by_source = frame.groupby(copy_of).size() / K
    src = source.ratings["user_id"].astype(int).value_counts().sort_index()
    assert np.corrcoef(by_source.to_numpy(), src.to_numpy())[0, 1] > 0.95


def test_copies_differ_unlike_a_plain_tiling(source, expanded):
    """In a tiling every copy of a user rates the same source movies; here copies share
    about as much as independent thinnings do, and which movie copies a user copy rates
    follows its row of the seed matrix."""
    expansion, _, data, _ = expanded
    frame = data.ratings
    user = frame["user_id"].astype(int).to_numpy() - 1
    movie = frame["movie_id"].astype(int).to_numpy() - 1
    copy, source_user = user // USERS, user % USERS
    histories = pd.Series(movie % MOVIES).groupby([copy, source_user]).agg(frozenset)
    jaccards = []
    for i in range(USERS):
        a, b = histories.get((0, i), frozenset()), histories.get((1, i), frozenset())
        if a | b:
            jaccards.append(len(a & b) / len(a | b))
    assert np.mean(jaccards) < 0.7  # a tiling: 1.0
    # share of copy a's ratings in movie copy b against P[a, b]
    table = np.zeros((K, L))
    np.add.at(table, (copy, movie // MOVIES), 1)
    share = table / table.sum(axis=1, keepdims=True)
    p = expansion.probabilities
    assert p.std() > 0.2 * p.mean()  # the seed matrix is not flat
    assert np.corrcoef(share.ravel(), (p / p.sum(axis=1, keepdims=True)).ravel())[0, 1] > 0.8


def test_stars_ids_titles_and_features_trace_back(source, expanded):
    _, meta, data, _ = expanded
    r = data.ratings
    assert set(r["rating"].unique()) <= set(source.ratings["rating"].unique())
    assert {0.5, 4.5} <= set(r["rating"].unique())  # half stars survive
    assert meta["rating_scale"] == [0.5, 5.0] and data.rating_scale == (0.5, 5.0)
    assert meta["source"]["kind"] == "expanded" and meta["seed"] == 3
    assert not r.duplicated(["user_id", "movie_id"]).any()
    assert data.movies["movie_id"].is_unique and data.users["user_id"].is_unique
    assert set(r["movie_id"]) <= set(data.movies["movie_id"])
    # every rating is its source user's rating of its source movie, a shift later
    src = source.ratings.set_index(["user_id", "movie_id"])
    key = [
        (str((int(u) - 1) % USERS + 1), str((int(m) - 1) % MOVIES + 1))
        for u, m in zip(r["user_id"], r["movie_id"], strict=True)
    ]
    origin = src.loc[key]
    assert (origin["rating"].to_numpy() == r["rating"].to_numpy()).all()
    shift = r["timestamp"].to_numpy() - origin["timestamp"].to_numpy()
    assert shift.min() >= 0 and shift.max() < 30 * 86_400
    # titles name their source movie and copy; year and genres carried over
    order = natural_order(source.movies["movie_id"])
    catalogue = source.movies.set_index("movie_id")
    for _, row in data.movies.iterrows():
        copy, j = divmod(int(row["movie_id"]) - 1, MOVIES)
        original = catalogue.loc[order[j]]
        expected = original["title"] + (f" [copy {copy}]" if copy else "")
        assert row["title"] == expected
        assert row["year"] == original["year"] and list(row["genres"]) == original["genres"]
    assert re.fullmatch(r"Film \d+ \(\d{4}\) \[copy 3\]", data.movies["title"].iloc[-1])
    users = data.users.set_index("user_id")
    assert users.loc[str(2 * USERS + 7), "age"] == source.users["age"].iloc[6]


def test_a_seed_gives_the_same_data_whatever_the_chunks(source, expanded, tmp_path):
    _, _, data, _ = expanded
    again = FractalExpansion(source, K, L, seed=3, chunk_ratings=10**6)
    write_parquet_shards(again, tmp_path / "again")
    pd.testing.assert_frame_equal(load_parquet_dataset(tmp_path / "again").ratings, data.ratings)
    other = FractalExpansion(source, K, L, seed=4)
    write_parquet_shards(other, tmp_path / "other")
    assert not load_parquet_dataset(tmp_path / "other").ratings.equals(data.ratings)


def test_a_source_without_user_features_gives_none(tmp_path):
    expansion = FractalExpansion(skewed_source(with_users=False), 2, 3, seed=0)
    write_expansion(expansion, tmp_path / "x")
    assert load_dataset(tmp_path / "x").users is None


def test_a_source_of_three_users_expands_too(source):
    """Too small for a truncated SVD: the seed matrix comes from a dense one."""
    few = source.ratings[source.ratings["user_id"].isin(["1", "2", "3"])]
    tiny = Dataset("tiny", few, source.movies, rating_scale=(0.5, 5.0))
    expansion = FractalExpansion(tiny, 4, 3, seed=0)
    assert expansion.rank == 3 and expansion.probabilities.shape == (4, 3)
    rows = sum(t.num_rows for t in expansion.rating_tables())
    assert abs(rows - 4 * len(few)) < 0.2 * 4 * len(few)


def test_bad_arguments_are_refused(source):
    for k, l_, match in ((0, 2, "whole numbers"), (1, 1, "1 x 1"), (2, 1, "look alike")):
        with pytest.raises(MovierecError, match=match):
            FractalExpansion(source, k, l_)
    with pytest.raises(MovierecError, match="at most"):
        FractalExpansion(source, 2, 2, ratings=10 * len(source.ratings))
    with pytest.raises(MovierecError, match="whole number"):
        FractalExpansion(source, 2, 2, ratings=0)
    empty = Dataset("empty", source.ratings.iloc[:0], source.movies)
    with pytest.raises(MovierecError, match="no ratings"):
        FractalExpansion(empty, 2, 2)


def write_source(tmp_path) -> str:
    directory = tmp_path / "source"
    write_parquet_shards(skewed_source(), directory)
    return str(directory)


def test_cli_expands_and_data_info_reads_it(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["data", "expand", "--data", write_source(tmp_path), "--out", str(out)]
    assert main([*argv, "--user-multiplier", "3", "--movie-multiplier", "2", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert "ratings" in captured.out and "expand:" in captured.err  # progress on stderr
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    assert main(["data", "info", "--data", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    meta = json.loads((out / "meta.json").read_text())
    assert info["ratings"] == meta["sizes"]["ratings"] and info["movies"] == 2 * MOVIES
    assert info["rating_scale"] == [0.5, 5.0] and info["name"] == "skewed-x3u-x2m-s1"
    # a second run replaces the data set in place
    assert main([*argv, "--user-multiplier", "2", "--movie-multiplier", "2"]) == 0
    assert json.loads((out / "meta.json").read_text())["source"]["user_multiplier"] == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--user-multiplier", "0", "--movie-multiplier", "2"], "whole numbers"),
        (["--user-multiplier", "2", "--movie-multiplier", "1"], "look alike"),
        (["--user-multiplier", "2", "--movie-multiplier", "2", "--ratings", "-5"], "whole number"),
        (["--user-multiplier", "2", "--movie-multiplier", "2", "--shard-size", "0"], "shard"),
    ],
)
def test_cli_bad_options_exit_2_and_write_nothing(tmp_path, capsys, options, message):
    source = write_source(tmp_path)
    code = main(["data", "expand", "--data", source, "--out", str(tmp_path / "o"), *options])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("movierec: error:") and message in err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_to_overwrite_what_is_not_a_data_set(tmp_path, capsys):
    source = write_source(tmp_path)
    base = ["data", "expand", "--data", source, "--user-multiplier", "2", "--movie-multiplier", "2"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    assert main([*base, "--out", str(busy)]) == 2
    assert "not a movierec Parquet data set" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    assert main([*base, "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main([*base, "--out", source]) == 2
    assert "own directory" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_an_interrupted_expansion_leaves_the_old_data_set(tmp_path, monkeypatch, failure):
    source = write_source(tmp_path)
    out = tmp_path / "out"
    base = ["data", "expand", "--data", source, "--out", str(out), "--movie-multiplier", "2"]
    assert main([*base, "--user-multiplier", "2", "--shard-size", "500"]) == 0
    before = sorted(p.name for p in out.iterdir())
    original = FractalExpansion._copy
    calls = []

    def failing(self, a):
        calls.append(a)
        if len(calls) == 3:  # after the first shards were written
            raise failure("stop")
        return original(self, a)

    monkeypatch.setattr(FractalExpansion, "_copy", failing)
    argv = [*base, "--user-multiplier", "4", "--shard-size", "500"]
    if failure is KeyboardInterrupt:
        assert main(argv) == 130
    else:
        with pytest.raises(OSError):
            main(argv)
    assert sorted(p.name for p in out.iterdir()) == before
    assert json.loads((out / "meta.json").read_text())["source"]["user_multiplier"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "source"]  # no staging left


@pytest.mark.slow
def test_training_streams_from_an_expansion(tmp_path, capsys):
    out = tmp_path / "expanded"
    argv = ["data", "expand", "--data", write_source(tmp_path), "--out", str(out)]
    assert main([*argv, "--user-multiplier", "3", "--movie-multiplier", "2"]) == 0
    models = tmp_path / "models"
    settings = ["embedding_dim=8", "members=1", "users_per_batch=32"]
    train = ["train", "ranking", "--data", str(out), "--stream", "--models", str(models)]
    assert main([*train, *(a for s in settings for a in ("--set", s)), "--epochs", "2"]) == 0
    manifest = json.loads((models / "ranking" / "manifest.json").read_text())
    assert manifest["streamed"] is True
    written = json.loads((out / "meta.json").read_text())["sizes"]["ratings"]
    assert manifest["metrics"]["count"] > 0.1 * written  # the hash split's test share
