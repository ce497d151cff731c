"""Ratings people give through the service, kept in a real database.

SQLite beside the models by default, any SQLAlchemy URL (PostgreSQL, ...) by
option. One row per (user, movie): rating again replaces the old rating, which
is what a person expects when they change their mind. ``movierec train
--ratings-db URL`` reads everything back with :func:`read_ratings`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from movierec.data.schema import RATING_COLUMNS
from movierec.errors import DataError

DEFAULT_DB_NAME = "ratings.sqlite3"
MAX_ID_LENGTH = 64

metadata = MetaData()
ratings_table = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_ID_LENGTH), nullable=False, index=True),
    Column("movie_id", String(MAX_ID_LENGTH), nullable=False),
    Column("rating", Float, nullable=False),
    Column("timestamp", Integer, nullable=False),
    UniqueConstraint("user_id", "movie_id", name="uq_ratings_user_movie"),
)


def default_url(models_dir: str | Path) -> str:
    """The SQLite file used when no ``--db`` is given: next to the models."""
    return f"sqlite:///{Path(models_dir).resolve() / DEFAULT_DB_NAME}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets settings that make it safe across threads."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DataError(f"not a database URL: {url!r} ({error})") from None
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        # The service answers from a thread pool; SQLite serialises writes itself.
        kwargs["connect_args"] = {"check_same_thread": False}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        return create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as error:
        raise DataError(f"cannot open database {url!r}: {error}") from None


class RatingStore:
    """The ``ratings`` table: upsert one rating, read a user's, read them all."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as error:
            raise DataError(f"cannot open database {url!r}: {error}") from None

    def upsert(
        self, user_id: str, movie_id: str, rating: float, timestamp: int | None = None
    ) -> bool:
        """Store a rating; True when it is new, False when it replaced an older one.

        Update-then-insert works on every database; the unique constraint turns a
        race between two first ratings into an update instead of a duplicate.
        """
        values = {"rating": float(rating), "timestamp": int(timestamp or time.time())}
        key = (ratings_table.c.user_id == user_id) & (ratings_table.c.movie_id == movie_id)
        try:
            with self.engine.begin() as connection:
                if connection.execute(update(ratings_table).where(key).values(**values)).rowcount:
                    return False
                connection.execute(
                    ratings_table.insert().values(user_id=user_id, movie_id=movie_id, **values)
                )
            return True
        except IntegrityError:
            pass  # another request inserted it meanwhile (rolled back): update that row
        with self.engine.begin() as connection:
            connection.execute(update(ratings_table).where(key).values(**values))
        return False

    def user_ratings(self, user_id: str) -> list[tuple[str, float, int]]:
        """(movie_id, rating, timestamp) of one user, oldest first."""
        query = (
            select(ratings_table.c.movie_id, ratings_table.c.rating, ratings_table.c.timestamp)
            .where(ratings_table.c.user_id == user_id)
            .order_by(ratings_table.c.timestamp, ratings_table.c.id)
        )
        with self.engine.connect() as connection:
            return [(m, float(r), int(t)) for m, r, t in connection.execute(query)]

    def all_ratings(self) -> pd.DataFrame:
        """Every stored rating in the normalised ratings schema."""
        columns = [getattr(ratings_table.c, name) for name in RATING_COLUMNS]
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).order_by(ratings_table.c.id)).all()
        frame = pd.DataFrame(rows, columns=RATING_COLUMNS)
        return frame.astype(
            {"user_id": str, "movie_id": str, "rating": "float32", "timestamp": "int64"}
        )

    def close(self) -> None:
        self.engine.dispose()


def describe_url(url: str) -> str:
    """``url`` without its password, for manifests and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def add_stored_ratings(
    train: pd.DataFrame, test: pd.DataFrame, stored: pd.DataFrame, movies: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """``train`` plus the stored ratings that may be trained on, and how many those are.

    Stored ratings of movies outside the catalogue are dropped (nothing to show),
    so are those of a (user, movie) pair in ``test`` (it would leak the answer);
    a stored rating replaces a training rating of the same pair (it is newer).
    """
    keep = stored["movie_id"].isin(movies["movie_id"])
    test_pairs = pd.MultiIndex.from_frame(test[["user_id", "movie_id"]])
    keep &= ~pd.MultiIndex.from_frame(stored[["user_id", "movie_id"]]).isin(test_pairs)
    stored = stored.loc[keep, RATING_COLUMNS]
    stored_pairs = pd.MultiIndex.from_frame(stored[["user_id", "movie_id"]])
    replaced = pd.MultiIndex.from_frame(train[["user_id", "movie_id"]]).isin(stored_pairs)
    merged = pd.concat([train.loc[~replaced], stored.astype(train.dtypes.to_dict())])
    return merged.reset_index(drop=True), len(stored)


def read_ratings(url: str) -> pd.DataFrame:
    """All ratings stored by the service at ``url`` (for ``train --ratings-db``)."""
    store = RatingStore(url)
    try:
        return store.all_ratings()
    finally:
        store.close()
