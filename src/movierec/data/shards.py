"""Training data that streams from Parquet shards instead of one in-memory table.

Why: 20M ratings as a pandas table with string ids take gigabytes, and shuffling
it every epoch copies it again. A :class:`ShardedTrainingSet` reads a movierec
Parquet data set (``movierec data synth``,
:func:`~movierec.data.parquet_format.write_parquet_shards`) twice,
one shard at a time: once to fix the vocabularies, once to encode each
shard's ids to int32 indices in a scratch directory. Models then read those encoded
shards one at a time, memory-mapped, epoch after epoch. Memory holds one shard and
what is kept per user or per movie (vocabularies, side features, the rating
histories at 8 bytes a rating), never the table.

The split is decided row by row (:class:`HashSplit`): a keyed hash of (user, movie)
puts a rating in the test set, the validation slice or the training set, so no
pass needs the whole table and the same data and seed give the same split in any
shard order.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from movierec.data.histories import Chunk, Histories
from movierec.data.parquet_format import (
    RATINGS_SCHEMA,
    catalogue_dataset,
    read_parquet_meta,
    read_ratings_shard,
)
from movierec.data.schema import RATING_COLUMNS, Dataset
from movierec.data.splits import PARTS, HashSplit
from movierec.data.vocab import Vocabulary, natural_order
from movierec.errors import DataError

TRAINING_PARTS = ("train", "validation")
ARRAYS = ("user", "movie", "rating", "timestamp")


@dataclass(frozen=True)
class EncodedShard:
    """One part (train / validation / test) of one shard, as .npy files in the scratch dir."""

    prefix: Path
    rows: int

    def arrays(self) -> dict[str, np.ndarray]:
        """user, movie (int32 indices), rating (float32), timestamp (int64); memory-mapped."""
        return {name: np.load(f"{self.prefix}-{name}.npy", mmap_mode="r") for name in ARRAYS}

    def chunk(self) -> Chunk:
        """The shard's (user, movie, rating) arrays, memory-mapped."""
        a = self.arrays()
        return a["user"], a["movie"], a["rating"]


class ShardedTrainingSet:
    """A split of a movierec Parquet data set, encoded shard by shard; see the module doc.

    Offers what :class:`~movierec.data.training.TrainingSet` offers models that can
    stream (``dataset`` for side features, ``users`` / ``movies`` vocabularies,
    ``len``), plus the encoded shards of each part. Use it as a context manager, or
    call :meth:`close`, to remove the scratch directory.
    """

    def __init__(
        self,
        directory: str | Path,
        split: HashSplit,
        *,
        scratch_dir: str | Path | None = None,
        progress: bool = True,
    ):
        self.root = Path(directory).expanduser()
        if not self.root.is_dir():
            raise DataError(
                "no such directory; training from shards needs one written by "
                "`movierec data synth` (meta.json + ratings-*.parquet)",
                path=self.root,
            )
        self.meta = read_parquet_meta(self.root)
        self.split = split
        self.progress = progress
        self.dataset: Dataset = catalogue_dataset(
            self.root, self.meta, pd.DataFrame({c: [] for c in RATING_COLUMNS})
        )
        self.scratch = Path(tempfile.mkdtemp(prefix="movierec-shards-", dir=scratch_dir))
        try:
            self.users, self.movies = self._scan_vocabularies()
            self.parts: dict[str, list[EncodedShard]] = self._encode()
        except BaseException:
            self.close()
            raise

    # -- the two passes over the Parquet files ---------------------------------------

    def _shard_tables(self, columns: list[str] | None, desc: str) -> Iterator[pa.Table]:
        from tqdm.auto import tqdm

        names = self.meta["shards"]
        # A live bar on a terminal only (None): a log file gets no redrawn lines.
        disable = None if self.progress else True
        for name in tqdm(names, desc=desc, unit="shard", disable=disable):
            table = read_ratings_shard(self.root / name)
            yield table if columns is None else table.select(columns)

    def _split_file(self, number: int) -> Path:
        """Where pass one keeps shard ``number``'s split codes for pass two (1 byte a rating)."""
        return self.scratch / f"{number:05d}-split.npy"

    def _scan_vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        """Users with training ratings; movies of the catalogue plus any rated."""
        users: list[pa.Array] = [pa.array([], pa.string())]
        movies: list[pa.Array] = [pa.array(self.dataset.movies["movie_id"], pa.string())]
        tables = self._shard_tables(["user_id", "movie_id"], "scanning ids")
        for number, table in enumerate(tables):
            which = self.split.parts(table["user_id"], table["movie_id"])
            np.save(self._split_file(number), which)
            training = which < PARTS.index("test")
            users.append(pc.unique(table["user_id"].filter(pa.array(training))))
            movies.append(pc.unique(table["movie_id"]))
        return (
            Vocabulary(natural_order(pc.unique(pa.concat_arrays(users)))),
            Vocabulary(natural_order(pc.unique(pa.concat_arrays(movies)))),
        )

    def _encode(self) -> dict[str, list[EncodedShard]]:
        parts: dict[str, list[EncodedShard]] = {name: [] for name in PARTS}
        tables = self._shard_tables(None, "encoding ratings")
        for number, table in enumerate(tables):
            which = np.load(self._split_file(number))
            encoded = {
                "user": self.users.lookup(table["user_id"]),
                "movie": self.movies.lookup(table["movie_id"]),
                "rating": table["rating"].to_numpy().astype(np.float32),
                "timestamp": table["timestamp"].to_numpy().astype(np.int64),
            }
            for code, part in enumerate(PARTS):
                rows = which == code
                prefix = self.scratch / f"{number:05d}-{part}"
                for name in ARRAYS:
                    np.save(f"{prefix}-{name}.npy", encoded[name][rows])
                parts[part].append(EncodedShard(prefix, int(rows.sum())))
        return parts

    # -- what models and the workflow use ---------------------------------------------

    def __len__(self) -> int:
        """Training ratings (train + validation parts), as ``len(TrainingSet)`` counts them."""
        return sum(s.rows for part in TRAINING_PARTS for s in self.parts[part])

    def count(self, part: str) -> int:
        """Ratings in one part: "train", "validation" or "test"."""
        return sum(s.rows for s in self.parts[part])

    def chunks(self, *parts: str) -> Iterator[Chunk]:
        """(user, movie, rating) of each shard of ``parts``, one shard at a time."""
        for part in parts:
            for shard in self.parts[part]:
                yield shard.chunk()

    def histories(self, *parts: str) -> Histories:
        """Rating histories of the given parts (default: every training rating)."""
        parts = parts or TRAINING_PARTS
        return Histories.from_chunks(lambda: self.chunks(*parts), self.users.size)

    def mean_rating(self, *parts: str) -> float:
        """Mean stars of the given parts (default: every training rating); 0 if empty."""
        total = count = 0.0
        for _, _, rating in self.chunks(*(parts or TRAINING_PARTS)):
            total += float(np.sum(rating, dtype=np.float64))
            count += len(rating)
        return total / count if count else 0.0

    def write_ratings(self, path: Path) -> None:
        """The training ratings with their raw ids, written shard by shard to Parquet."""
        user_ids, movie_ids = self.users.arrow_ids, self.movies.arrow_ids
        with pq.ParquetWriter(path, RATINGS_SCHEMA, compression="zstd") as writer:
            for part in TRAINING_PARTS:
                for shard in self.parts[part]:
                    a = shard.arrays()
                    writer.write_table(
                        pa.table(
                            {
                                "user_id": pc.take(user_ids, np.asarray(a["user"]) - 1),
                                "movie_id": pc.take(movie_ids, np.asarray(a["movie"]) - 1),
                                "rating": np.asarray(a["rating"]),
                                "timestamp": np.asarray(a["timestamp"]),
                            },
                            schema=RATINGS_SCHEMA,
                        )
                    )

    def describe(self) -> dict[str, Any]:
        """The data set's summary for a model manifest (from meta.json: no extra pass)."""
        sizes = self.meta.get("sizes", {})
        return {
            "name": self.dataset.name,
            "ratings": sizes.get("ratings"),
            "users": sizes.get("users"),
            "movies": len(self.dataset.movies),
            "has_user_features": self.dataset.users is not None,
            "rating_scale": list(self.dataset.rating_scale),
            "source": self.dataset.source,
            "streamed_from_shards": len(self.meta["shards"]),
        }

    def close(self) -> None:
        """Delete the encoded shards' scratch directory."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> ShardedTrainingSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
