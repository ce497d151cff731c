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

# One XLA compilation cache for the whole test session, this process and the CLI
# processes it starts: the many small fits compile the same programs again and again.
# A fresh directory per session, so a run never leans on an earlier one.
_XLA_CACHE = tempfile.mkdtemp(prefix="movierec-test-xla-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _XLA_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from movierec.data.schema import Dataset  # noqa: E402  (after the cache settings)


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


TASTE_GENRES = (["Action", "Sci-Fi"], ["Comedy", "Romance"], ["Drama"], ["Horror"],
                ["Documentary"], ["Animation"])
OCCUPATIONS = ("engineer", "artist", "student")


def user_taste(user_id: str, tastes: int = 2) -> int:
    """The taste group a planted user belongs to (users take turns: user 2 has taste 0,
    like movies 1-30 of the default catalogue; user 1 taste 1)."""
    return int(user_id) % tastes


def movie_taste(movie_id: str, movies: int = 60, tastes: int = 2, unrated: int = 0) -> int:
    """The taste group of a planted movie: the rated catalogue is cut into ``tastes``
    consecutive blocks (movies 1-30 and 31-60 by default)."""
    block = (movies - unrated) // tastes
    return min((int(movie_id) - 1) // block, tastes - 1)


def make_planted_dataset(
    users: int = 200,
    movies: int = 60,
    per_user: int = 20,
    *,
    tastes: int = 2,
    off_taste: float = 0.25,
    unrated: int = 0,
    noise: float = 0.0,
    with_users: bool = False,
    gap: int | None = None,
    seed: int = 0,
    name: str = "planted",
) -> Dataset:
    """The one planted data set every test draws from: users in taste groups.

    User ``u`` belongs to taste ``user_taste(u)`` and movie ``m`` to ``movie_taste(m)``
    (consecutive blocks of the catalogue; the last ``unrated`` movies are in the
    catalogue but never rated: cold-start candidates). Each user rates ``per_user``
    movies, a share ``off_taste`` of them from other tastes: 4 or 5 stars in their own
    taste, 1 or 2 elsewhere, plus Gaussian ``noise`` (clipped to 1-5). The order is
    shuffled and timestamps interleave users (user ``u``'s k-th rating at
    ``k * gap + u`` seconds; ``gap`` defaults to 60 per user, so no two of a user's
    ratings share a session), so every split method has work to do.
    Ids are "1", "2", ...; titles "Planted 3 (1993)"; genres follow the taste;
    ``with_users`` adds a demographics table. Deterministic for a ``seed``.
    """
    if not 1 <= tastes <= len(TASTE_GENRES):
        raise ValueError(f"tastes must be 1-{len(TASTE_GENRES)}")
    rng = np.random.default_rng(seed)
    rated = movies - unrated
    taste_of = np.array([movie_taste(str(m), movies, tastes, unrated) for m in range(1, rated + 1)])
    n_off = round(per_user * off_taste) if tastes > 1 else 0
    gap = 60 * users if gap is None else gap
    rows = []
    for u in range(1, users + 1):
        own = taste_of == user_taste(str(u), tastes)
        picks = [(m, True) for m in rng.choice(np.flatnonzero(own) + 1, per_user - n_off,
                                               replace=False)]
        picks += [(m, False) for m in rng.choice(np.flatnonzero(~own) + 1, n_off, replace=False)]
        rng.shuffle(picks)
        for k, (m, liked) in enumerate(picks):
            stars = rng.choice([4.0, 5.0]) if liked else rng.choice([1.0, 2.0])
            if noise:
                stars = float(np.clip(stars + rng.normal(0.0, noise), 1.0, 5.0))
            rows.append((str(u), str(int(m)), stars, 1_000_000_000 + k * gap + u))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    ratings = ratings.astype(
        {"user_id": str, "movie_id": str, "rating": "float32", "timestamp": "int64"}
    )
    ids = [str(m) for m in range(1, movies + 1)]
    years = [1990 + m % 10 for m in range(1, movies + 1)]
    movie_table = pd.DataFrame(
        {
            "movie_id": pd.Series(ids, dtype=str),
            "title": pd.Series([f"Planted {m} ({y})" for m, y in zip(ids, years, strict=True)],
                               dtype=str),
            "year": pd.Series(years, dtype="Int64"),
            "genres": [list(TASTE_GENRES[movie_taste(m, movies, tastes, unrated)]) for m in ids],
        }
    )
    user_table = None
    if with_users:
        numbers = range(1, users + 1)
        user_table = pd.DataFrame(
            {
                "user_id": pd.Series([str(u) for u in numbers], dtype=str),
                "age": pd.Series([18 + (u * 7) % 50 for u in numbers], dtype="Int64"),
                "gender": pd.Series(["F" if u % 3 else "M" for u in numbers], dtype=str),
                "occupation": pd.Series([OCCUPATIONS[u % 3] for u in numbers], dtype=str),
                "zip": pd.Series([f"{10000 + u}" for u in numbers], dtype=str),
            }
        )
    return Dataset(name=name, ratings=ratings, movies=movie_table, users=user_table,
                   source={"kind": "memory", "path": None, "ratings_sha256": None})


TINY = {"users": 30, "movies": 40, "per_user": 16, "unrated": 2, "with_users": True,
        "name": "tiny"}


@pytest.fixture
def tiny_dataset() -> Dataset:
    """30 users, 40 movies (39 and 40 never rated), with demographics; a fresh copy per
    test, so a test that mutates it cannot affect another."""
    return make_planted_dataset(**TINY)


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


@functools.cache
def cli_example_models():
    """The session's example model pair: planted data written as GroupLens files and both
    example models trained on it through `movierec train all` (seed 7), then loaded.

    Trained once per session (a function, not a fixture, so module-level helpers can use
    it); returns (models directory, Recommender). Read-only: copy the directory to
    change it.
    """
    from movierec.cli.main import main
    from movierec.pipeline import Recommender

    root = Path(tempfile.mkdtemp(prefix="movierec-cli-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data = write_ml_latest(make_planted_dataset(), root / "data")
    models = root / "models"
    code = main(
        ["train", "all", "--model", "example", "--data", str(data), "--models", str(models),
         "--epochs", "4", "--set", "batch_size=128", "--quiet", "--seed", "7", "--holdout"]
    )
    assert code == 0
    return models, Recommender.load(models)


@pytest.fixture(scope="session")
def example_pair():
    """The session's example pair (:func:`cli_example_models`) as objects: (models
    directory, split, training set, retriever, ranker); read-only."""
    from movierec.data.loading import load_dataset
    from movierec.data.splits import split_from_manifest
    from movierec.models.artifacts import load_model

    models, _ = cli_example_models()
    retrieval, ranking = load_model(models / "retrieval"), load_model(models / "ranking")
    ratings = load_dataset(retrieval.manifest["data_source"]).ratings
    split = split_from_manifest(ratings, retrieval.manifest["split"])
    assert len(split.train) == len(retrieval.train.rating)
    return models, split, retrieval.train, retrieval.retriever, ranking.ranker


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


#: Small two-tower and dcn settings for a history-aware pair trained in seconds.
SMALL_TWO_STAGE = {
    "retrieval": {"epochs": 10, "batch_size": 32, "embedding_dim": 16, "feature_dim": 4,
                  "hidden_dim": 16, "learning_rate": 1e-2, "item_item_rank": 16},
    "ranking": {"epochs": 6, "embedding_dim": 8, "hidden_units": 16, "users_per_batch": 32,
                "members": 1},
}  # fmt: skip


@pytest.fixture(scope="session")
def planted_two_stage():
    """The default models (two-tower and dcn, small settings, seed 3) trained on the
    planted set (:func:`make_planted_dataset`, every rating): a ``movierec.Recommender``
    whose answers follow each user's history; read-only, trained once per session."""
    import movierec

    return movierec.train(
        make_planted_dataset(),
        retrieval_settings=SMALL_TWO_STAGE["retrieval"],
        ranking_settings=SMALL_TWO_STAGE["ranking"],
        seed=3,
        verbose=0,
    )
