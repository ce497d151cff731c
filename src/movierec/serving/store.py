"""Ratings people give through the service, kept in a real database.

SQLite beside the models by default, any SQLAlchemy URL (PostgreSQL, ...) by
option. One row per (user, movie): rating again replaces the old rating, which
is what a person expects when they change their mind. Feedback without stars
("watched", "not interested": :mod:`movierec.feedback`) lives beside them in the
``feedback`` table, again one row per (user, movie), the latest type winning; deleting
the row undoes it. ``movierec train --ratings-db URL`` reads everything back with
:func:`read_ratings` and :func:`read_feedback`.

Upgrades: opening a database creates the tables it lacks and leaves the others as
they are, so a ratings database written before feedback existed keeps every rating
and gains an empty ``feedback`` table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from movierec.data.schema import RATING_COLUMNS
from movierec.errors import DataError, MovierecError
from movierec.feedback import FEEDBACK_TYPES, check_feedback_type

DEFAULT_DB_NAME = "ratings.sqlite3"
MAX_ID_LENGTH = 64
# SQLite waits this long for another writer's lock before "database is locked" ...
SQLITE_BUSY_TIMEOUT_S = 5.0
# ... and a write that still meets a busy database is tried again this many times.
BUSY_ATTEMPTS = 4

T = TypeVar("T")


class StoreBusyError(MovierecError):
    """The database stayed locked or unreachable through every retry: try again later."""


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
#: The longest feedback type name the table holds.
MAX_TYPE_LENGTH = 32
feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_ID_LENGTH), nullable=False, index=True),
    Column("movie_id", String(MAX_ID_LENGTH), nullable=False),
    Column("type", String(MAX_TYPE_LENGTH), nullable=False),
    Column("timestamp", Integer, nullable=False),
    UniqueConstraint("user_id", "movie_id", name="uq_feedback_user_movie"),
)
FEEDBACK_COLUMNS = ["user_id", "movie_id", "type", "timestamp"]
assert max(map(len, FEEDBACK_TYPES)) <= MAX_TYPE_LENGTH


def default_url(models_dir: str | Path) -> str:
    """The SQLite file used when no ``--db`` is given: next to the models."""
    return f"sqlite:///{Path(models_dir).resolve() / DEFAULT_DB_NAME}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets settings that make it safe across threads."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DataError("not a database URL (expected e.g. sqlite:///ratings.sqlite3)") from None
    kwargs: dict = {}
    file_database = False
    if parsed.get_backend_name() == "sqlite":
        # The service answers from a thread pool; SQLite serialises writes itself and
        # waits up to the busy timeout for another writer's lock.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            file_database = True
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as error:
        raise DataError(f"cannot open database {describe_url(url)}: {error}") from None
    if file_database:
        event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(connection, _record) -> None:
    """Write-ahead logging: readers never wait for the writer, and a writer waits
    only for the previous writer's commit, not for readers."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint
    cursor.close()


def _retrying(operation: Callable[[], T], attempts: int = BUSY_ATTEMPTS) -> T:
    """``operation()``, tried again with a short random back-off when the database
    is busy or the connection dropped; :class:`StoreBusyError` when it never worked."""
    for attempt in range(attempts):
        try:
            return operation()
        except OperationalError as error:
            if attempt == attempts - 1:
                raise StoreBusyError(
                    f"the ratings database is busy or unreachable ({_first_line(error)})"
                ) from None
            time.sleep(random.uniform(0.01, 0.05) * (2**attempt))
    raise AssertionError("unreachable")


def _first_line(error: SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's SQL echo and links (and so
    without any URL)."""
    lines = str(getattr(error, "orig", None) or type(error).__name__).splitlines()
    return lines[0] if lines else type(error).__name__


class RatingStore:
    """The ``ratings`` table: upsert one rating, read a user's, read them all."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        try:
            self._create_missing_tables()
        except SQLAlchemyError as error:
            self.engine.dispose()
            raise DataError(
                f"cannot open database {describe_url(url)}: {_first_line(error)}"
            ) from None

    def _create_missing_tables(self) -> None:
        """Create the tables (and their indexes) the database lacks; existing ones are
        left as they are. Two services opening a new database at once may race to
        create a table: the loser looks again and finds it."""
        for attempt in range(2):
            try:
                metadata.create_all(self.engine)
                return
            except SQLAlchemyError:
                if attempt:
                    raise

    @property
    def display_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return describe_url(self.url)

    def upsert(
        self, user_id: str, movie_id: str, rating: float, timestamp: int | None = None
    ) -> bool:
        """Store a rating; True when it is new, False when it replaced an older one.

        Update-then-insert works on every database; the unique constraint turns a
        race between two first ratings into an update instead of a duplicate.

        Args:
            user_id: The rater's raw id.
            movie_id: The rated movie's raw id.
            rating: The stars.
            timestamp: Seconds since the epoch; now when ``None`` (or 0).

        Returns:
            True for a new (user, movie) pair, False when an older rating was replaced.

        Raises:
            StoreBusyError: The database stayed busy or unreachable through every retry.
        """
        values = {"rating": float(rating), "timestamp": int(timestamp or time.time())}
        return self._upsert(ratings_table, user_id, movie_id, values)

    def _upsert(self, table: Table, user_id: str, movie_id: str, values: dict) -> bool:
        """Update-then-insert of one (user, movie) row of ``table``; True when new.

        The unique constraint turns a race between two first writes into an update
        instead of a duplicate. The write is committed before this returns.
        """
        key = (table.c.user_id == user_id) & (table.c.movie_id == movie_id)

        def attempt() -> bool:
            try:
                with self.engine.begin() as connection:
                    changed = connection.execute(update(table).where(key).values(**values))
                    if changed.rowcount:
                        return False
                    connection.execute(
                        table.insert().values(user_id=user_id, movie_id=movie_id, **values)
                    )
                return True
            except IntegrityError:
                pass  # another request inserted it meanwhile (rolled back): update that row
            with self.engine.begin() as connection:
                connection.execute(update(table).where(key).values(**values))
            return False

        return _retrying(attempt)

    def count(self) -> int:
        """How many ratings are stored."""

        def attempt() -> int:
            with self.engine.connect() as connection:
                return int(
                    connection.execute(select(func.count()).select_from(ratings_table)).scalar_one()
                )

        return _retrying(attempt)

    def user_ratings(self, user_id: str) -> list[tuple[str, float, int]]:
        """(movie_id, rating, timestamp) of one user, oldest first."""
        query = (
            select(ratings_table.c.movie_id, ratings_table.c.rating, ratings_table.c.timestamp)
            .where(ratings_table.c.user_id == user_id)
            .order_by(ratings_table.c.timestamp, ratings_table.c.id)
        )

        def attempt() -> list[tuple[str, float, int]]:
            with self.engine.connect() as connection:
                return [(m, float(r), int(t)) for m, r, t in connection.execute(query)]

        return _retrying(attempt)

    def all_ratings(self) -> pd.DataFrame:
        """Every stored rating in the normalised ratings schema."""
        columns = [getattr(ratings_table.c, name) for name in RATING_COLUMNS]
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).order_by(ratings_table.c.id)).all()
        frame = pd.DataFrame(rows, columns=RATING_COLUMNS)
        return frame.astype(
            {"user_id": str, "movie_id": str, "rating": "float32", "timestamp": "int64"}
        )

    def put_feedback(
        self, user_id: str, movie_id: str, kind: str, timestamp: int | None = None
    ) -> bool:
        """Store feedback; True when new, False when it replaced this pair's earlier feedback.

        Args:
            user_id: The person's raw id.
            movie_id: The movie's raw id.
            kind: One of :data:`movierec.feedback.FEEDBACK_TYPES`.
            timestamp: Seconds since the epoch; now when ``None`` (or 0).

        Raises:
            ValueError: ``kind`` is not a feedback type.
            StoreBusyError: The database stayed busy or unreachable through every retry.
        """
        values = {"type": check_feedback_type(kind), "timestamp": int(timestamp or time.time())}
        return self._upsert(feedback_table, user_id, movie_id, values)

    def delete_feedback(self, user_id: str, movie_id: str) -> tuple[str, int] | None:
        """Remove a pair's feedback (undoing it); its (type, timestamp), or None when
        there was none."""
        table = feedback_table
        key = (table.c.user_id == user_id) & (table.c.movie_id == movie_id)

        def attempt() -> tuple[str, int] | None:
            with self.engine.begin() as connection:
                row = connection.execute(select(table.c.type, table.c.timestamp).where(key)).first()
                if row is None:
                    return None
                connection.execute(table.delete().where(key))
                return str(row[0]), int(row[1])

        return _retrying(attempt)

    def user_feedback(self, user_id: str) -> list[tuple[str, str, int]]:
        """(movie_id, type, timestamp) of one user's feedback, oldest first."""
        table = feedback_table
        query = (
            select(table.c.movie_id, table.c.type, table.c.timestamp)
            .where(table.c.user_id == user_id)
            .order_by(table.c.timestamp, table.c.id)
        )

        def attempt() -> list[tuple[str, str, int]]:
            with self.engine.connect() as connection:
                return [(m, str(k), int(t)) for m, k, t in connection.execute(query)]

        return _retrying(attempt)

    def count_feedback(self) -> int:
        """How many feedback rows are stored."""

        def attempt() -> int:
            with self.engine.connect() as connection:
                query = select(func.count()).select_from(feedback_table)
                return int(connection.execute(query).scalar_one())

        return _retrying(attempt)

    def all_feedback(self) -> pd.DataFrame:
        """Every feedback row: ``user_id``, ``movie_id``, ``type``, ``timestamp``."""
        columns = [getattr(feedback_table.c, name) for name in FEEDBACK_COLUMNS]
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).order_by(feedback_table.c.id)).all()
        frame = pd.DataFrame(rows, columns=FEEDBACK_COLUMNS)
        return frame.astype({"user_id": str, "movie_id": str, "type": str, "timestamp": "int64"})

    def close(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


def describe_url(url: str) -> str:
    """``url`` without its password, for manifests and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def read_ratings(url: str) -> pd.DataFrame:
    """All ratings stored by the service at ``url`` (for ``train --ratings-db``)."""
    store = RatingStore(url)
    try:
        return store.all_ratings()
    finally:
        store.close()


def snapshot(url: str, path: str | Path) -> str:
    """Copy every table of the database at ``url`` into a new SQLite file ``path``, as
    of one moment; the snapshot's URL.

    Why: ``movierec retrain`` trains the retrieval and the ranking model one after the
    other, each reading the stored ratings (and whatever else the store keeps); rows
    written between the two reads would give the models different training data,
    and :func:`~movierec.models.artifacts.stage_mismatch` would then refuse the pair.
    Both read this snapshot instead. SQLite is copied with its online backup (a
    consistent copy while the service writes); any other database table by table in
    one repeatable-read transaction.

    Raises:
        DataError: The database cannot be opened or read.
    """
    import sqlite3

    path = Path(path)
    source = RatingStore(url)  # creates the tables when the store is still empty
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            live = sqlite3.connect(parsed.database, timeout=SQLITE_BUSY_TIMEOUT_S)
            copy = sqlite3.connect(path)
            try:
                live.backup(copy)
            finally:
                copy.close()
                live.close()
        else:
            _copy_tables(source.engine, path)
    except (SQLAlchemyError, sqlite3.Error) as error:
        path.unlink(missing_ok=True)
        detail = _first_line(error) if isinstance(error, SQLAlchemyError) else str(error)
        raise DataError(f"cannot read database {describe_url(url)}: {detail}") from None
    finally:
        source.close()
    return f"sqlite:///{path.resolve()}"


def _copy_tables(engine: Engine, path: Path) -> None:
    """Every table of ``engine``'s database into SQLite ``path``, read in one transaction."""
    tables = MetaData()
    target = create_engine(f"sqlite:///{path}")
    isolation = {} if engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    try:
        with engine.connect().execution_options(**isolation) as source:
            with source.begin():
                tables.reflect(bind=source)
                for table in tables.tables.values():
                    for column in table.columns:  # e.g. PostgreSQL's nextval(...): not SQL here
                        column.server_default = None
                tables.create_all(target)
                with target.begin() as copy:
                    for table in tables.sorted_tables:
                        rows = [dict(row._mapping) for row in source.execute(select(table))]
                        if rows:
                            copy.execute(table.insert(), rows)
    finally:
        target.dispose()


def read_feedback(url: str) -> pd.DataFrame:
    """All feedback rows stored by the service at ``url`` (for ``train --ratings-db``)."""
    store = RatingStore(url)
    try:
        return store.all_feedback()
    finally:
        store.close()
