"""movierec's Parquet data-set format: a directory of ratings shards, movies, users, meta.json.

Why a format of its own: the GroupLens files are text and must be parsed whole; a Parquet
directory is typed, compressed and split into shards, so a 20M-rating set (real or from
:mod:`movierec.data.synth`) loads fast and streamed training (:mod:`movierec.data.shards`)
can read it one shard at a time. ``meta.json`` is written last and lists the shards, so a
directory without it is an interrupted write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from movierec.atomic import atomic_file, write_json
from movierec.data.schema import MOVIE_COLUMNS, RATING_COLUMNS, USER_COLUMNS, Dataset
from movierec.errors import DataError, MovierecError

FORMAT = "movierec-parquet"
FORMAT_VERSION = 1
META_FILE = "meta.json"
MOVIES_FILE = "movies.parquet"
USERS_FILE = "users.parquet"

RATINGS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("movie_id", pa.string()),
        ("rating", pa.float32()),
        ("timestamp", pa.int64()),
    ]
)
MOVIES_SCHEMA = pa.schema(
    [
        ("movie_id", pa.string()),
        ("title", pa.string()),
        ("year", pa.int64()),
        ("genres", pa.list_(pa.string())),
    ]
)
USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("age", pa.int64()),
        ("gender", pa.string()),
        ("occupation", pa.string()),
        ("zip", pa.string()),
    ]
)


class TableSource(Protocol):
    """What :func:`write_parquet_shards` streams from: a generated data set's tables
    (:mod:`movierec.data.synth`, :mod:`movierec.data.expand`)."""

    @property
    def name(self) -> str:
        """The data set's name."""
        ...

    @property
    def rating_scale(self) -> tuple[float, float]:
        """Lowest and highest stars."""
        ...

    def movies_table(self) -> pa.Table:
        """The catalogue, in :data:`MOVIES_SCHEMA`."""
        ...

    def users_table(self) -> pa.Table | None:
        """User features, in :data:`USERS_SCHEMA` (None: the data set has none)."""
        ...

    def rating_tables(self) -> Iterator[pa.Table]:
        """The ratings a chunk at a time, in :data:`RATINGS_SCHEMA`."""
        ...

    def settings(self) -> dict[str, Any]:
        """What determines the data, recorded in ``meta.json`` (``kind`` defaults to
        ``"synthetic"``)."""
        ...


def write_parquet_shards(
    source: Dataset | TableSource,
    out_dir: str | Path,
    shard_size: int = 1_000_000,
) -> dict[str, Any]:
    """Write ratings as ``ratings-00000.parquet``... plus movies, users and ``meta.json``.

    A generator is streamed (memory stays O(users + movies + shard)). Every file is
    written under a temporary name and renamed; ``meta.json`` is written last and lists
    the shards, so a directory without it is an interrupted write. Returns the meta.
    """
    if shard_size < 1:
        raise MovierecError("shard_size must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Dataset):
        movies = _arrow(source.movies[MOVIE_COLUMNS], MOVIES_SCHEMA)
        users = None if source.users is None else _arrow(source.users[USER_COLUMNS], USERS_SCHEMA)
        frame = source.ratings[RATING_COLUMNS]
        chunks: Iterator[pa.Table] = (
            _arrow(frame.iloc[i : i + shard_size], RATINGS_SCHEMA)
            for i in range(0, len(frame), shard_size)
        )
        name, scale, info = source.name, list(source.rating_scale), dict(source.source)
    else:
        movies, users = source.movies_table(), source.users_table()
        chunks = source.rating_tables()
        name, scale = source.name, list(source.rating_scale)
        info = {"kind": "synthetic", **source.settings()}
    _write_table(movies, out / MOVIES_FILE)
    if users is not None:
        _write_table(users, out / USERS_FILE)
    shards = _write_shards(chunks, out, shard_size)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "rating_scale": scale,
        "source": info,
        "seed": info.get("seed"),
        "sizes": {
            "ratings": sum(n for _, n in shards),
            "movies": movies.num_rows,
            "users": None if users is None else users.num_rows,
        },
        "shards": [f for f, _ in shards],
        "schema": {
            "ratings": _schema_json(RATINGS_SCHEMA),
            "movies": _schema_json(MOVIES_SCHEMA),
            "users": _schema_json(USERS_SCHEMA),
        },
    }
    write_json(out / META_FILE, meta, indent=2)
    listed = {f for f, _ in shards}
    for stale in out.glob("ratings-*.parquet"):  # left by an earlier, bigger write
        if stale.name not in listed:
            stale.unlink()
    return meta


def _write_shards(chunks: Iterator[pa.Table], out: Path, shard_size: int) -> list[tuple[str, int]]:
    """Write ``chunks`` as shards of ``shard_size`` rows; (file name, rows) of each."""
    shards: list[tuple[str, int]] = []
    for pieces in _shard_pieces(chunks, shard_size):
        name = f"ratings-{len(shards):05d}.parquet"
        with atomic_file(out / name) as tmp:
            with pq.ParquetWriter(tmp, RATINGS_SCHEMA, compression="zstd") as writer:
                for piece in pieces:
                    writer.write_table(piece)
        shards.append((name, sum(piece.num_rows for piece in pieces)))
    return shards


def _shard_pieces(chunks: Iterator[pa.Table], shard_size: int) -> Iterator[list[pa.Table]]:
    """The slices of ``chunks`` that make up each shard of ``shard_size`` rows (the last
    may be shorter); one row group per slice, as the chunks came."""
    pieces: list[pa.Table] = []
    rows = 0
    for chunk in chunks:
        offset = 0
        while offset < chunk.num_rows:
            take = min(shard_size - rows, chunk.num_rows - offset)
            pieces.append(chunk.slice(offset, take))
            rows += take
            offset += take
            if rows == shard_size:
                yield pieces
                pieces, rows = [], 0
    if pieces:
        yield pieces


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, schema, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DataError(f"data set does not fit the movierec schema: {exc}") from None


def _write_table(table: pa.Table, path: Path) -> None:
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _schema_json(schema: pa.Schema) -> dict[str, str]:
    return {f.name: str(f.type) for f in schema}


def load_parquet_dataset(directory: str | Path) -> Dataset:
    """Read a directory written by :func:`write_parquet_shards` back into a Dataset."""
    root = Path(directory)
    meta = read_parquet_meta(root)
    shards = [read_ratings_shard(root / name) for name in meta["shards"]]
    ratings = pa.concat_tables(shards) if shards else RATINGS_SCHEMA.empty_table()
    return catalogue_dataset(root, meta, ratings_frame(ratings))


def read_parquet_meta(root: Path) -> dict[str, Any]:
    """``meta.json`` of a movierec Parquet data set, checked."""
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise DataError("not a movierec Parquet data set (meta.json missing)", path=root)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read meta.json: {exc}", path=meta_path) from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("shards"), list):
        raise DataError(f"not a {FORMAT} meta file", path=meta_path)
    return meta


def read_ratings_shard(path: Path) -> pa.Table:
    """One ``ratings-*.parquet`` file in the normalised column types."""
    return _read_table(path, RATINGS_SCHEMA)


def catalogue_dataset(root: Path, meta: dict[str, Any], ratings: pd.DataFrame) -> Dataset:
    """The data set's movies and users (small next to the ratings) around ``ratings``."""
    movies = _read_table(root / MOVIES_FILE, MOVIES_SCHEMA)
    users = None
    if meta.get("sizes", {}).get("users") is not None:
        users = users_frame(_read_table(root / USERS_FILE, USERS_SCHEMA))
    return Dataset(
        name=str(meta.get("name", root.name)),
        ratings=ratings,
        movies=movies_frame(movies),
        users=users,
        rating_scale=tuple(meta.get("rating_scale", (1.0, 5.0))),
        source={**meta.get("source", {}), "path": str(root)},
    )


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.is_file():
        raise DataError("file listed in meta.json is missing", path=path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file: {exc}", path=path) from None
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise DataError(f"missing columns {missing}", path=path)
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"columns have the wrong types: {exc}", path=path) from None


def ratings_frame(table: pa.Table) -> pd.DataFrame:
    """A ratings table as the normalised ratings frame (string ids, float32 stars)."""
    frame = table.to_pandas()
    frame["user_id"] = frame["user_id"].astype(str)
    frame["movie_id"] = frame["movie_id"].astype(str)
    return frame.astype({"rating": np.float32, "timestamp": np.int64})


def movies_frame(table: pa.Table) -> pd.DataFrame:
    """A movies table as the normalised movies frame (genres as lists, never null)."""
    genres = table.column("genres").to_pylist()
    frame = table.drop_columns(["genres"]).to_pandas()
    frame["movie_id"] = frame["movie_id"].astype(str)
    frame["year"] = frame["year"].astype("Int64")
    frame["genres"] = pd.Series([g or [] for g in genres], dtype=object, index=frame.index)
    return frame[MOVIE_COLUMNS]


def users_frame(table: pa.Table) -> pd.DataFrame:
    """A users table as the normalised users frame (nullable integer ages)."""
    frame = table.to_pandas()
    for col in ("user_id", "gender", "occupation", "zip"):
        frame[col] = frame[col].astype(str)
    frame["age"] = frame["age"].astype("Int64")
    return frame[USER_COLUMNS]
