"""The one normalised shape every data source is loaded into.

Whatever the files look like (RecBole atomic files, GroupLens ml-100k, ml-1m,
ml-latest), the rest of movierec sees a :class:`Dataset` with these columns:

- ``ratings``: ``user_id`` (str), ``movie_id`` (str), ``rating`` (float32),
  ``timestamp`` (int64, seconds since the epoch).
- ``movies``: ``movie_id`` (str), ``title`` (str, with the year as "Title (1995)"
  when the year is known), ``year`` (nullable Int64), ``genres`` (list of str).
- ``users`` (or ``None`` when the source has none): ``user_id`` (str),
  ``age`` (nullable Int64), ``gender`` (str), ``occupation`` (str), ``zip`` (str).

Ids stay strings: sources do not promise dense integers, and the
:class:`~movierec.data.vocab.Vocabulary` maps them to model indices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

RATING_COLUMNS = ["user_id", "movie_id", "rating", "timestamp"]
MOVIE_COLUMNS = ["movie_id", "title", "year", "genres"]
USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]


def ratings_digest(ratings: pd.DataFrame) -> str:
    """SHA-256 of a ratings frame's content (every row of :data:`RATING_COLUMNS`, in order).

    Unlike a file checksum it exists for every data set, loaded from files or built
    in memory, so a saved model can always name the exact ratings it came from and
    ``movierec evaluate`` can refuse any other.
    """
    rows = pd.util.hash_pandas_object(ratings[RATING_COLUMNS], index=False)
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()


def ratings_frame(user_id, movie_id, rating, timestamp) -> pd.DataFrame:
    """Ratings columns in the normalised order and dtypes, whatever the source called them.

    Args:
        user_id: User ids (made strings).
        movie_id: Movie ids (made strings).
        rating: Stars (made float32).
        timestamp: Seconds since the epoch (made int64).

    Returns:
        The ratings frame with :data:`RATING_COLUMNS`.
    """
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_id).astype(str),
            "movie_id": pd.Series(movie_id).astype(str),
            "rating": pd.Series(rating).astype("float32"),
            "timestamp": pd.Series(timestamp).astype("int64"),
        }
    )


@dataclass
class Dataset:
    """Ratings, movies and (optionally) users of one source, plus where they came from."""

    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame | None = None
    rating_scale: tuple[float, float] = (1.0, 5.0)
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Counts and ranges, for `movierec data info` and model manifests."""
        r = self.ratings
        return {
            "name": self.name,
            "ratings": int(len(r)),
            "users": int(r["user_id"].nunique()),
            "movies_rated": int(r["movie_id"].nunique()),
            "movies": int(len(self.movies)),
            "has_user_features": self.users is not None,
            "rating_scale": list(self.rating_scale),
            "first_timestamp": int(r["timestamp"].min()) if len(r) else None,
            "last_timestamp": int(r["timestamp"].max()) if len(r) else None,
            "source": self.source,
            "ratings_digest": ratings_digest(r),
        }

    def movie_titles(self) -> dict[str, str]:
        """Title by movie id."""
        return dict(zip(self.movies["movie_id"], self.movies["title"], strict=True))
