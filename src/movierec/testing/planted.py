"""Planted data sets: users in taste groups, so a model's learning can be checked.

Every model test draws from :func:`make_planted_dataset`: users belong to taste
groups and like the movies of their own group, so whether a model learned anything is
a question with a known answer (chance is one group's share of the catalogue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.schema import Dataset

#: The genres of each taste group's movies (group 0: action and science fiction, ...).
TASTE_GENRES = (["Action", "Sci-Fi"], ["Comedy", "Romance"], ["Drama"], ["Horror"],
                ["Documentary"], ["Animation"])  # fmt: skip
OCCUPATIONS = ("engineer", "artist", "student")
#: The small planted set with demographics and two never-rated movies (``tiny_dataset``).
TINY = {"users": 30, "movies": 40, "per_user": 16, "unrated": 2, "with_users": True,
        "name": "tiny"}  # fmt: skip


def user_taste(user_id: str, tastes: int = 2) -> int:
    """The taste group a planted user belongs to.

    Users take turns: with two tastes, user 2 has taste 0 (likes movies 1-30 of the
    default catalogue) and user 1 taste 1.
    """
    return int(user_id) % tastes


def movie_taste(movie_id: str, movies: int = 60, tastes: int = 2, unrated: int = 0) -> int:
    """The taste group of a planted movie.

    The rated catalogue is cut into ``tastes`` consecutive blocks (movies 1-30 and 31-60
    by default); the never-rated movies at the end belong to the last block.
    """
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

    Args:
        users: How many users (ids "1" to ``users``).
        movies: How many movies (ids "1" to ``movies``, titles "Planted 3 (1993)").
        per_user: How many movies each user rates.
        tastes: How many taste groups (1 to 6); genres follow the taste.
        off_taste: The share of each user's ratings from other tastes.
        unrated: How many movies at the end of the catalogue nobody rates.
        noise: The standard deviation of the Gaussian noise added to the stars.
        with_users: Whether to add a demographics table.
        gap: Seconds between a user's consecutive ratings.
        seed: The random seed; the same seed gives the same data set.
        name: The data set's name.

    Returns:
        The data set, deterministic for its arguments.

    Raises:
        ValueError: If ``tastes`` is outside 1-6.
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
                                               replace=False)]  # fmt: skip
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
            "title": pd.Series(
                [f"Planted {m} ({y})" for m, y in zip(ids, years, strict=True)], dtype=str
            ),
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
    return Dataset(
        name=name,
        ratings=ratings,
        movies=movie_table,
        users=user_table,
        source={"kind": "memory", "path": None, "ratings_sha256": None},
    )


def write_ml_latest(dataset: Dataset, directory: Path) -> Path:
    """Write a data set as GroupLens ml-latest files (``ratings.csv``, ``movies.csv``).

    Args:
        dataset: The data set (a planted one, usually).
        directory: Where to write; created if missing.

    Returns:
        ``directory``, for ``--data``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ratings = dataset.ratings.rename(columns={"user_id": "userId", "movie_id": "movieId"})
    ratings.to_csv(directory / "ratings.csv", index=False)
    movies = dataset.movies.assign(genres=dataset.movies["genres"].map("|".join))
    movies.rename(columns={"movie_id": "movieId"})[["movieId", "title", "genres"]].to_csv(
        directory / "movies.csv", index=False
    )
    return directory
