"""Side features of movies and users as small integer tables, one row per model index.

Both stages (the two-tower retriever and the dcn ranker) look features up by movie /
user index, so each feature becomes an int32 table aligned with the
:class:`~movierec.data.vocab.Vocabulary` of the training set (row 0, the unknown id, is
all zeros). Index 0 of every feature vocabulary means "missing", so a source without a
column (ml-latest has no users table, some movies have no year) simply yields zeros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec.data.training import TrainingSet
from movierec.data.vocab import Vocabulary

if TYPE_CHECKING:
    from movierec.data.shards import ShardedTrainingSet

#: Age buckets of MovieLens 1M; raw ages (ML-100K) are mapped onto them.
AGE_BUCKETS = (18, 25, 35, 45, 50, 56)
MAX_GENRES = 6
MAX_TITLE_WORDS = 8
ZIP_PREFIX = 2
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class FeatureTables:
    """Int32 tables indexed by model index, and the vocabularies that give their values."""

    movie: dict[str, np.ndarray]
    user: dict[str, np.ndarray]
    vocabularies: dict[str, list[str]]

    def sizes(self) -> dict[str, int]:
        """Rows each feature's embedding table needs (known values + the missing slot)."""
        return {name: len(ids) + 1 for name, ids in self.vocabularies.items()}


def build_feature_tables(train: TrainingSet | ShardedTrainingSet) -> FeatureTables:
    """Encode ``train.dataset.movies`` (and ``users`` when present) against train's vocabularies."""
    vocabularies: dict[str, list[str]] = {}
    movie = _movie_tables(train.dataset.movies, train.movies, vocabularies)
    user = _user_tables(train.dataset.users, train.users, vocabularies)
    return FeatureTables(movie=movie, user=user, vocabularies=vocabularies)


def _movie_tables(
    movies: pd.DataFrame | None, vocab: Vocabulary, out: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    n = vocab.size
    genres = np.zeros((n, MAX_GENRES), np.int32)
    year = np.zeros((n,), np.int32)
    words = np.zeros((n, MAX_TITLE_WORDS), np.int32)
    if movies is None or len(movies) == 0:
        out.update(genre=[], year=[], title_word=[])
        return {"genres": genres, "year": year, "title_words": words}
    rows = vocab.lookup(movies["movie_id"])
    known = rows > 0
    movies, rows = movies[known], rows[known]

    genre_lists = [_as_list(g) for g in movies.get("genres", pd.Series([[]] * len(movies)))]
    genre_vocab = Vocabulary.from_ids(g for gs in genre_lists for g in gs)
    for row, gs in zip(rows, genre_lists, strict=True):
        idx = genre_vocab.lookup(gs)[:MAX_GENRES]
        genres[row, : len(idx)] = idx

    years = movies["year"] if "year" in movies else pd.Series([pd.NA] * len(movies))
    year_str = [str(int(y)) if pd.notna(y) else "" for y in years]
    year_vocab = Vocabulary.from_ids(y for y in year_str if y)
    year[rows] = [year_vocab.index(y) if y else 0 for y in year_str]

    # Words shared by at least two titles: a word seen once says no more than the movie id.
    titles = movies["title"] if "title" in movies else pd.Series([""] * len(movies))
    tokens = [_title_words(t) for t in titles]
    counts = pd.Series([w for ws in tokens for w in set(ws)], dtype=object).value_counts()
    word_vocab = Vocabulary.from_ids(counts.index[counts >= 2])
    for row, ws in zip(rows, tokens, strict=True):
        idx = word_vocab.lookup(ws)
        idx = idx[idx > 0][:MAX_TITLE_WORDS]
        words[row, : len(idx)] = idx

    out.update(
        genre=genre_vocab.to_json(), year=year_vocab.to_json(), title_word=word_vocab.to_json()
    )
    return {"genres": genres, "year": year, "title_words": words}


def _user_tables(
    users: pd.DataFrame | None, vocab: Vocabulary, out: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    names = ("age", "gender", "occupation", "zip")
    tables = {name: np.zeros((vocab.size,), np.int32) for name in names}
    if users is None or len(users) == 0:
        out.update({name: [] for name in names})
        return tables
    rows = vocab.lookup(users["user_id"])
    users = users[rows > 0]
    rows = rows[rows > 0]
    columns = {
        "age": [_age_bucket(a) for a in users.get("age", pd.Series([pd.NA] * len(users)))],
        "gender": _strings(users, "gender"),
        "occupation": _strings(users, "occupation"),
        "zip": [z[:ZIP_PREFIX] for z in _strings(users, "zip")],
    }
    for name, values in columns.items():
        value_vocab = Vocabulary.from_ids(v for v in values if v)
        tables[name][rows] = [value_vocab.index(v) if v else 0 for v in values]
        out[name] = value_vocab.to_json()
    return tables


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [g for g in re.split(r"[|,]\s*|\s+", value) if g]
    return [str(g) for g in value]


def _title_words(title: object) -> list[str]:
    if not isinstance(title, str):
        return []
    return _WORD.findall(_YEAR_SUFFIX.sub("", title).lower())


def _age_bucket(age: Any) -> str:
    if age is None or pd.isna(age):
        return ""
    return str(int(np.searchsorted(AGE_BUCKETS, int(age), side="right")))


def _strings(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame:
        return [""] * len(frame)
    return ["" if pd.isna(v) else str(v).strip() for v in frame[column]]
