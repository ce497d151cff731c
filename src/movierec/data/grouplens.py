"""The original GroupLens MovieLens downloads: ml-100k, ml-1m (and ml-10m), ml-latest / ml-25m.

Each layout is read into the same :class:`~movierec.data.schema.Dataset`; the
ratings go through the fast pandas path, the small movie and user files are
validated line by line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from movierec.data.home import file_sha256
from movierec.data.schema import Dataset, ratings_frame
from movierec.data.text_files import (
    TableFile,
    check_known,
    check_range,
    check_unique,
    require_columns,
)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRES = {"unknown", "(no genres listed)"}

# ml-1m README: occupation codes.
ML1M_OCCUPATIONS = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin",
    4: "college/grad student", 5: "customer service", 6: "doctor/health care",
    7: "executive/managerial", 8: "farmer", 9: "homemaker", 10: "K-12 student",
    11: "lawyer", 12: "programmer", 13: "retired", 14: "sales/marketing", 15: "scientist",
    16: "self-employed", 17: "technician/engineer", 18: "tradesman/craftsman",
    19: "unemployed", 20: "writer",
}

RATING_FIELDS = ("user_id", "movie_id", "rating", "timestamp")
LATEST_RATING_HEADER = ["userId", "movieId", "rating", "timestamp"]
LATEST_MOVIE_HEADER = ["movieId", "title", "genres"]
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


def load_ml100k(directory: str | Path, name: str | None = None) -> Dataset:
    """GroupLens ml-100k: ``u.data`` (tab), ``u.item`` / ``u.user`` (pipe, latin-1)."""
    directory = Path(directory)
    item = TableFile(
        directory / "u.item",
        ("movie_id", "title", "release_date", "video_release_date", "imdb_url")
        + tuple(f"g{i}" for i in range(len(ML100K_GENRES))),
        "|",
        encoding="latin-1",
        numeric=tuple(f"g{i}" for i in range(len(ML100K_GENRES))),
    )
    raw = item.read()
    check_unique(item, raw, ["movie_id"], "movie id")
    flags = raw[[f"g{i}" for i in range(len(ML100K_GENRES))]].to_numpy() > 0
    genres = [[g for g, on in zip(ML100K_GENRES, row, strict=True) if on and g not in NO_GENRES]
              for row in flags]
    in_title = _year_from_titles(raw["title"])
    from_date = pd.to_numeric(raw["release_date"].str[-4:], errors="coerce").astype("Int64")
    year = in_title.fillna(from_date)
    add_year = in_title.isna() & year.notna()
    titles = raw["title"].str.strip()
    titles = titles.where(~add_year, titles + " (" + year.astype(str) + ")")
    movies = _movies(raw["movie_id"], titles, year, genres)

    user = TableFile(directory / "u.user", ("user_id", "age", "gender", "occupation", "zip"),
                     "|", encoding="latin-1", numeric=("age",))
    users = None
    if user.path.is_file():
        raw_users = user.read()
        check_unique(user, raw_users, ["user_id"], "user id")
        users = _users(raw_users, raw_users["occupation"])

    data = TableFile(directory / "u.data", RATING_FIELDS, "\t", numeric=("rating", "timestamp"))
    return _finish(name or directory.name, "grouplens-ml-100k", data, movies, users, (1.0, 5.0))


def load_ml1m(directory: str | Path, name: str | None = None) -> Dataset:
    """GroupLens ml-1m (``::`` separated, latin-1); without ``users.dat`` it is ml-10m style.

    ml-10m has the same layout but half-star ratings and no users file, so the
    scale follows from which files are present.
    """
    directory = Path(directory)
    movie = TableFile(directory / "movies.dat", ("movie_id", "title", "genres"), "::",
                      encoding="latin-1")
    raw = movie.read()
    check_unique(movie, raw, ["movie_id"], "movie id")
    movies = _movies(raw["movie_id"], raw["title"], _year_from_titles(raw["title"]),
                     [_split_genres(g) for g in raw["genres"]])

    user = TableFile(directory / "users.dat", ("user_id", "gender", "age", "occupation", "zip"),
                     "::", encoding="latin-1", numeric=("age", "occupation"))
    users = None
    if user.path.is_file():
        raw_users = user.read()
        check_unique(user, raw_users, ["user_id"], "user id")
        codes = raw_users["occupation"].astype(int)
        occupation = codes.map(ML1M_OCCUPATIONS).fillna(codes.astype(str))
        users = _users(raw_users, occupation)
    scale = (1.0, 5.0) if users is not None else (0.5, 5.0)

    data = TableFile(directory / "ratings.dat", RATING_FIELDS, "::", encoding="latin-1",
                     numeric=("rating", "timestamp"))
    return _finish(name or directory.name, "grouplens-ml-1m", data, movies, users, scale)


def load_ml_latest(directory: str | Path, name: str | None = None) -> Dataset:
    """GroupLens ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m: CSV with headers, no users."""
    directory = Path(directory)
    movie = _csv(directory / "movies.csv", LATEST_MOVIE_HEADER, ("movie_id", "title", "genres"))
    raw = movie.read()
    check_unique(movie, raw, ["movie_id"], "movie id")
    movies = _movies(raw["movie_id"], raw["title"], _year_from_titles(raw["title"]),
                     [_split_genres(g) for g in raw["genres"]])
    data = _csv(directory / "ratings.csv", LATEST_RATING_HEADER, RATING_FIELDS,
                numeric=("rating", "timestamp"))
    return _finish(name or directory.name, "grouplens-ml-latest", data, movies, None, (0.5, 5.0))


def _csv(path: Path, header: list[str], fields: tuple[str, ...],
         numeric: tuple[str, ...] = ()) -> TableFile:
    """A headered CSV whose header must be exactly ``header`` (renamed to ``fields``)."""
    table = TableFile(path, fields, ",", header=True, numeric=numeric, quoted=True)
    table.require()
    found = table.header_fields()
    require_columns(table, found, header)
    if found != header:
        raise table.error(f"expected header {','.join(header)}, found {','.join(found)}", 1)
    return table


def _finish(name: str, kind: str, data: TableFile, movies: pd.DataFrame,
            users: pd.DataFrame | None, scale: tuple[float, float]) -> Dataset:
    """Read and check the ratings file, the big one, and assemble the Dataset."""
    raw = data.read(fast=True)
    ratings = ratings_frame(raw["user_id"], raw["movie_id"], raw["rating"], raw["timestamp"])
    check_range(data, ratings, "rating", *scale)
    check_unique(data, ratings, ["user_id", "movie_id"], "rating of (user, movie)")
    check_known(data, ratings, "movie_id", movies["movie_id"], "movie")
    if users is not None:
        check_known(data, ratings, "user_id", users["user_id"], "user")
    return Dataset(
        name=name,
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=scale,
        source={
            "kind": kind,
            "path": str(data.path.parent),
            "ratings_file": data.path.name,
            "ratings_sha256": file_sha256(data.path),
        },
    )


def _movies(ids: pd.Series, titles: pd.Series, year: pd.Series, genres: list) -> pd.DataFrame:
    return pd.DataFrame(
        {"movie_id": ids.astype(str), "title": titles.str.strip().astype(str),
         "year": year.astype("Int64"), "genres": genres}
    )


def _users(raw: pd.DataFrame, occupation: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str),
            "age": raw["age"].round().astype("Int64"),
            "gender": raw["gender"].astype(str),
            "occupation": occupation.astype(str),
            "zip": raw["zip"].astype(str),
        }
    )


def _year_from_titles(titles: pd.Series) -> pd.Series:
    """Year from a trailing "(1995)"; titles without one get <NA>."""
    return pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False),
                         errors="coerce").astype("Int64")


def _split_genres(text: str) -> list[str]:
    return [g for g in text.strip().split("|") if g and g not in NO_GENRES]
