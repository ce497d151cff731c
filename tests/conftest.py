"""Shared fixtures: small planted data sets and models trained once per session.

Training is what makes tests slow, so each trained model pair here is made once per
test session and shared; a test that changes a model directory copies it first.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data.schema import Dataset


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true", help="also run tests marked slow (CI always does)"
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run in CI (``CI`` set, as in ``.ci/run``) or with ``--slow``;
    a local default run skips them, so it stays quick."""
    if config.getoption("--slow") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


TINY_USERS = 30
TINY_MOVIES = 40
TINY_UNRATED = ("39", "40")  # in the catalogue, never rated: cold-start candidates


def make_tiny_dataset(seed: int = 0) -> Dataset:
    """30 users, 40 movies, two taste groups, deterministic for a seed.

    Users 1-15 like movies 1-20 (Action/Sci-Fi) and dislike 21-38 (Comedy/Romance);
    users 16-30 the opposite. Each user rates 16 movies (12 of their side, 4 of the
    other), with increasing timestamps, so models can beat chance and every split
    method has something to do. Movies 39 and 40 have no ratings.
    """
    rng = np.random.default_rng(seed)
    side_a = np.arange(1, 21)
    side_b = np.arange(21, 39)
    rows = []
    t0 = 1_000_000_000
    for u in range(1, TINY_USERS + 1):
        liked, other = (side_a, side_b) if u <= TINY_USERS // 2 else (side_b, side_a)
        picks = [(m, True) for m in rng.choice(liked, 12, replace=False)]
        picks += [(m, False) for m in rng.choice(other, 4, replace=False)]
        rng.shuffle(picks)
        for k, (m, good) in enumerate(picks):
            rating = rng.choice([4.0, 5.0]) if good else rng.choice([1.0, 2.0])
            rows.append((str(u), str(int(m)), rating, t0 + 3600 * (k * TINY_USERS + u)))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    ratings = ratings.astype({"user_id": str, "movie_id": str, "rating": "float32",
                              "timestamp": "int64"})
    ids = [str(m) for m in range(1, TINY_MOVIES + 1)]
    genres = [["Action", "Sci-Fi"] if m <= 20 else ["Comedy", "Romance"]
              for m in range(1, TINY_MOVIES + 1)]
    years = [1980 + m % 20 for m in range(1, TINY_MOVIES + 1)]
    movies = pd.DataFrame(
        {
            "movie_id": pd.Series(ids, dtype=str),
            "title": pd.Series([f"Movie {m} ({y})" for m, y in zip(ids, years, strict=True)],
                               dtype=str),
            "year": pd.Series(years, dtype="Int64"),
            "genres": genres,
        }
    )
    occupations = ["engineer", "artist", "student"]
    users = pd.DataFrame(
        {
            "user_id": pd.Series([str(u) for u in range(1, TINY_USERS + 1)], dtype=str),
            "age": pd.Series([18 + (u * 7) % 50 for u in range(1, TINY_USERS + 1)],
                             dtype="Int64"),
            "gender": pd.Series(["F" if u % 2 else "M" for u in range(1, TINY_USERS + 1)],
                                dtype=str),
            "occupation": pd.Series([occupations[u % 3] for u in range(1, TINY_USERS + 1)],
                                    dtype=str),
            "zip": pd.Series([f"{10000 + u}" for u in range(1, TINY_USERS + 1)], dtype=str),
        }
    )
    return Dataset(
        name="tiny",
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=(1.0, 5.0),
        source={"kind": "memory", "path": None, "ratings_sha256": None},
    )


@pytest.fixture
def tiny_dataset() -> Dataset:
    """A fresh copy per test, so a test that mutates it cannot affect another."""
    return make_tiny_dataset()


def make_planted_dataset(
    users: int = 200, movies: int = 60, per_user: int = 20, seed: int = 0
) -> Dataset:
    """A larger version of the tiny set's planted taste (two groups, two halves of the
    catalogue), big enough for id-only models to learn: for tests that check learning."""
    rng = np.random.default_rng(seed)
    half = movies // 2
    rows = []
    for u in range(1, users + 1):
        group = u % 2
        liked = np.arange(1, half + 1) if group == 0 else np.arange(half + 1, movies + 1)
        other = np.arange(half + 1, movies + 1) if group == 0 else np.arange(1, half + 1)
        picks = [(m, True) for m in rng.choice(liked, per_user * 3 // 4, replace=False)]
        picks += [(m, False) for m in rng.choice(other, per_user // 4, replace=False)]
        for k, (m, good) in enumerate(picks):
            rating = rng.choice([4.0, 5.0]) if good else rng.choice([1.0, 2.0])
            rows.append((str(u), str(int(m)), rating, 1_000_000_000 + 60 * (k * users + u)))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    ratings = ratings.astype(
        {"user_id": str, "movie_id": str, "rating": "float32", "timestamp": "int64"}
    )
    ids = [str(m) for m in range(1, movies + 1)]
    movie_table = pd.DataFrame(
        {
            "movie_id": pd.Series(ids, dtype=str),
            "title": pd.Series([f"Planted {m} (1990)" for m in ids], dtype=str),
            "year": pd.Series([1990] * movies, dtype="Int64"),
            "genres": [["Action"] if int(m) <= half else ["Comedy"] for m in ids],
        }
    )
    return Dataset(name="planted", ratings=ratings, movies=movie_table, users=None)


@pytest.fixture
def planted_dataset() -> Dataset:
    return make_planted_dataset()


def write_ml_latest(dataset, directory):
    """The planted set as GroupLens ml-latest files (ratings.csv, movies.csv)."""
    directory.mkdir(parents=True, exist_ok=True)
    ratings = dataset.ratings.rename(columns={"user_id": "userId", "movie_id": "movieId"})
    ratings.to_csv(directory / "ratings.csv", index=False)
    movies = dataset.movies.assign(genres=dataset.movies["genres"].map("|".join))
    movies.rename(columns={"movie_id": "movieId"})[["movieId", "title", "genres"]].to_csv(
        directory / "movies.csv", index=False
    )
    return directory


def train_example_models(dataset: Dataset, root, retrieval_epochs: int, ranking_epochs: int):
    """Fit the examples' models on a seeded 80/20 split and save both under ``root``.

    Fast stand-ins for the default models in pipeline, index and serving tests.
    """
    from movierec.data.splits import random_split
    from movierec.data.training import TrainingSet
    from movierec.models.artifacts import save_model
    from movierec.ranking.example import ExampleRanker
    from movierec.retrieval.example import ExampleRetriever

    split = random_split(dataset.ratings, test_fraction=0.2, seed=0)
    train = TrainingSet.build(dataset, split.train)
    retriever = ExampleRetriever(epochs=retrieval_epochs, batch_size=64, seed=1)
    retriever.fit(train, verbose=0)
    ranker = ExampleRanker(epochs=ranking_epochs, batch_size=64, seed=1)
    ranker.fit(train, verbose=0)
    save_model(retriever, train, root / "retrieval", split=split.info)
    save_model(ranker, train, root / "ranking", split=split.info)
    return split, train, retriever, ranker


@pytest.fixture(scope="session")
def example_pair(tmp_path_factory):
    """The examples' models on the planted set, trained and saved once per session.

    Returns (models directory, split, training set, retriever, ranker); read-only.
    """
    root = tmp_path_factory.mktemp("example-pair")
    split, train, retriever, ranker = train_example_models(make_planted_dataset(), root, 30, 20)
    return root, split, train, retriever, ranker


@functools.cache
def cli_example_models():
    """Planted data on disk, example models trained through `movierec train`, loaded.

    Once per session (a function, not a fixture, so module-level helpers can use it);
    returns (models directory, Recommender). Read-only: copy the directory to change it.
    """
    from movierec.cli.main import main
    from movierec.pipeline import Recommender

    root = Path(tempfile.mkdtemp(prefix="movierec-cli-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data = write_ml_latest(make_planted_dataset(), root / "data")
    models = root / "models"
    code = main(
        ["train", "all", "--model", "example", "--data", str(data), "--models", str(models),
         "--epochs", "4", "--set", "batch_size=128", "--quiet", "--seed", "7"]
    )
    assert code == 0
    return models, Recommender.load(models)


@pytest.fixture(scope="session")
def planted_shards(tmp_path_factory) -> Path:
    """The planted set as movierec Parquet shards (read-only), for streamed training."""
    from movierec.data.parquet_format import write_parquet_shards

    directory = tmp_path_factory.mktemp("planted-shards")
    write_parquet_shards(make_planted_dataset(), directory)
    return directory


def small_dcn_args(members: int, epochs: int, *extra: str) -> list[str]:
    """``movierec train`` arguments for a small, quick dcn (CLI and process tests)."""
    settings = [f"members={members}", "embedding_dim=8", "hidden_units=8", "users_per_batch=16",
                *extra]
    return [arg for s in settings for arg in ("--set", s)] + ["--epochs", str(epochs)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_cli(args: list[str], **popen) -> subprocess.Popen:
    """``movierec ARGS`` in a child process that imports this checkout's code (``popen``:
    :class:`subprocess.Popen` options such as ``stdout``)."""
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    return subprocess.Popen([sys.executable, "-m", "movierec.cli.main", *args], env=env, **popen)


def start_server(models: Path, port: int, db: Path) -> subprocess.Popen:
    """``movierec serve`` on 127.0.0.1:``port`` in a child process (stdout piped, so a test
    can wait for its "serving on" line)."""
    return start_cli(
        ["serve", "--models", str(models), "--port", str(port), "--db", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
