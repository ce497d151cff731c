"""Large realistic data sets grown from a real one by randomized fractal expansion.

Why: the synthetic generator (:mod:`movierec.data.synth`) plants structure a model can
find, but its taste clusters are its own guess; a real set such as ml-latest-small has
the structure real users have, only too little of it to measure a retriever at scale.
Belletti et al. ("Scalable Realistic Recommendation Datasets through Fractal
Expansions", 2019) grow a real user x movie matrix ``R`` by a Kronecker product with a
small matrix ``P`` derived from ``R``'s own singular vectors, drawing each entry of the
product at random instead of weighting it, so the result keeps the source's
heavy-tailed counts without being a tiling of copies. This module does that, streamed:

1. **The seed matrix** ``P`` (``K`` x ``L``, the user and movie multipliers). A rank-``r``
   truncated SVD of ``R``'s 0/1 incidence gives each source user and movie a profile
   (``U sqrt(S)``, ``V sqrt(S)``); ``K`` source users and ``L`` source movies
   (popularity-weighted) drawn at random are ``P``'s rows and columns, so ``P[a, b]`` is
   the low-rank affinity of a real user for a real movie. Negative affinities are
   floored, and ``P`` is scaled alternately by rows and columns (Sinkhorn) until every
   row sums to ``T / K`` and every column to ``T / L``, each entry at most 1, where
   ``T`` is the ratings wanted over the source's.
2. **The expansion.** User copy ``a`` of source user ``i`` rates movie copy ``b`` of
   source movie ``j`` with ``i``'s stars for ``j`` with probability ``P[a, b]``, when
   ``i`` rated ``j``, independently of every other entry: ``R (x) P`` with a Bernoulli
   draw per entry. A user copy's expected count is its source's times ``T / K``, a movie
   copy's its source's times ``T / L``, so both count distributions keep the source's
   shape; which movie copies a user copy rates follows ``P``'s row, so copies differ
   from each other and from their source.

Stars are the source's (half stars stay half stars); a user copy's timestamps are its
source's shifted by one random offset under :data:`MAX_SHIFT` seconds, so each history
keeps its order. Ids are dense integers: expanded user ``a * m + i + 1`` is copy ``a``
of the ``i``-th source user (0-based, in :func:`~movierec.data.vocab.natural_order`)
and movie ``b * n + j + 1`` copy ``b`` of the ``j``-th catalogue movie, titled
``"<title> [copy b]"`` for ``b >= 1`` with the source's year and genres; user features,
when the source has them, are copied. Ratings come out a few user copies at a time
(memory: the source, ``P`` and one chunk), sorted by user then time, for
:func:`~movierec.data.parquet_format.write_parquet_shards`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from movierec.data.parquet_format import (
    META_FILE,
    MOVIES_SCHEMA,
    RATINGS_SCHEMA,
    USERS_SCHEMA,
    write_parquet_shards,
)
from movierec.data.schema import Dataset
from movierec.data.vocab import natural_order
from movierec.errors import MovierecError
from movierec.progress import logger

#: Largest shift of a user copy's timestamps (30 days, in seconds).
MAX_SHIFT = 30 * 86_400
#: Largest mean keep probability: above it most entries are kept and copies look alike.
MAX_DENSITY = 0.5
#: Largest rank of the SVD behind the seed matrix.
MAX_RANK = 16
#: Floor of the seed matrix's affinities, as a share of the largest one.
FLOOR = 0.01
#: Most expanded users or movies: ids must fit movierec's int32 indices.
MAX_IDS = 2**31 - 1
#: Uniform draws made at once (a slice of a user copy's candidate entries).
_DRAWS = 4_000_000
_PROGRESS_EVERY = 5.0


class FractalExpansion:
    """A source data set and the seed matrix that grows it; a :class:`TableSource`.

    Holds the source's ratings as index arrays and the ``K`` x ``L`` seed matrix, never
    the expansion: :meth:`rating_tables` draws it a chunk of user copies at a time.

    Args:
        source: The data set to grow (any :class:`Dataset`; loaded whole).
        user_multiplier: ``K``, copies of each user (>= 1).
        movie_multiplier: ``L``, copies of each movie (>= 1; ``K * L >= 2``).
        ratings: Expected ratings in the result; default the source's times ``K``
            (each user copy keeps its source's expected count). Their mean share of
            the ``K * L`` candidate copies of each rating may be at most
            :data:`MAX_DENSITY`.
        seed: Seeds every draw; the same source and arguments give the same data.
        chunk_ratings: About how many ratings each chunk of user copies holds.

    Raises:
        MovierecError: A multiplier, the ratings or the chunk size out of range, or a
            source without ratings.
    """

    def __init__(
        self,
        source: Dataset,
        user_multiplier: int,
        movie_multiplier: int,
        *,
        ratings: int | None = None,
        seed: int = 0,
        chunk_ratings: int = 1_000_000,
    ):
        k, l_ = user_multiplier, movie_multiplier
        if not (isinstance(k, int) and isinstance(l_, int)) or k < 1 or l_ < 1:
            raise MovierecError("the user and movie multipliers (K, L) must be whole numbers >= 1")
        if k * l_ < 2:
            raise MovierecError("multipliers 1 x 1 would copy the source; make one of them >= 2")
        if chunk_ratings < 1:
            raise MovierecError("chunk_ratings must be positive")
        frame = source.ratings
        if len(frame) == 0:
            raise MovierecError(f"data set {source.name!r} has no ratings to expand")
        self.source = source
        self.user_copies, self.movie_copies = k, l_
        self.seed, self.chunk_ratings = seed, chunk_ratings
        self._index_source()
        if k * self.m > MAX_IDS or l_ * self.n > MAX_IDS:
            raise MovierecError(
                f"{k} x {self.m} users or {l_} x {self.n} movies is more than {MAX_IDS:,}"
            )
        nnz = len(self.rating)
        self.n_ratings = nnz * k if ratings is None else ratings
        if not isinstance(self.n_ratings, int) or self.n_ratings < 1:
            raise MovierecError("--ratings must be a whole number >= 1")
        density = self.n_ratings / (nnz * k * l_)
        if density > MAX_DENSITY:
            most = int(MAX_DENSITY * nnz * k * l_)
            raise MovierecError(
                f"{self.n_ratings:,} ratings would keep {density:.0%} of the {k} x {l_} copies "
                f"of each source rating, so the copies would look alike; ask for at most "
                f"{most:,} ratings or larger multipliers"
            )
        self.rank = 0
        self.probabilities = self._seed_matrix(np.random.default_rng([seed, 1]))
        self.ratings_written: int | None = None

    # -- the source and the seed matrix ----------------------------------------------

    def _index_source(self) -> None:
        """The source's ratings as int32 user / movie indices, sorted by user then time."""
        frame = self.source.ratings
        self.user_ids = natural_order(frame["user_id"].unique())
        catalogue = self.source.movies
        self.movie_ids = natural_order(catalogue["movie_id"])
        rated_not_listed = set(frame["movie_id"].unique()) - set(self.movie_ids)
        if rated_not_listed:
            raise MovierecError(
                f"data set {self.source.name!r} rates {len(rated_not_listed)} movie(s) "
                "missing from its catalogue"
            )
        self.m, self.n = len(self.user_ids), len(self.movie_ids)
        user = _codes(frame["user_id"], self.user_ids)
        movie = _codes(frame["movie_id"], self.movie_ids)
        stamp = frame["timestamp"].to_numpy(np.int64)
        order = np.lexsort((stamp, user))
        self.user, self.movie = user[order], movie[order]
        self.rating = frame["rating"].to_numpy(np.float32)[order]
        self.timestamp = stamp[order]

    def _seed_matrix(self, rng: np.random.Generator) -> np.ndarray:
        """``P``, K x L keep probabilities with balanced rows and columns (module doc)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import svds

        incidence = csr_matrix(
            (np.ones(len(self.user), np.float64), (self.user, self.movie)), shape=(self.m, self.n)
        )
        incidence.sum_duplicates()
        incidence.data[:] = 1.0
        rank = min(MAX_RANK, self.user_copies, self.movie_copies, self.m, self.n)
        if min(self.m, self.n) - 1 > rank:
            v0 = rng.standard_normal(min(self.m, self.n))
            left, sing, right_t = svds(incidence, k=rank, v0=v0)
        else:  # too small for ARPACK: a dense SVD
            left, sing, right_t = np.linalg.svd(incidence.toarray(), full_matrices=False)
            left, sing, right_t = left[:, :rank], sing[:rank], right_t[:rank]
        self.rank = int(rank)
        root = np.sqrt(sing)
        users = rng.choice(self.m, size=self.user_copies, replace=self.user_copies > self.m)
        popularity = np.bincount(self.movie, minlength=self.n).astype(np.float64)
        rated = int((popularity > 0).sum())
        copies = self.movie_copies
        movies = rng.choice(self.n, copies, replace=copies > rated, p=popularity / popularity.sum())
        affinity = (left[users] * root) @ (right_t[:, movies].T * root).T  # K x r @ r x L
        affinity = np.maximum(affinity, FLOOR * max(float(affinity.max()), 1e-12))
        return _balance(affinity, self.n_ratings / len(self.user))

    # -- TableSource ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The data set's name: the source's, the multipliers and the seed."""
        return f"{self.source.name}-x{self.user_copies}u-x{self.movie_copies}m-s{self.seed}"

    @property
    def rating_scale(self) -> tuple[float, float]:
        """The source's star scale (copies keep the source's stars)."""
        low, high = self.source.rating_scale
        return (float(low), float(high))

    def settings(self) -> dict[str, Any]:
        """Everything that, with the source, determines the data (recorded in meta.json)."""
        info = self.source.source or {}
        return {
            "kind": "expanded",
            "method": "randomized fractal expansion (Belletti et al. 2019)",
            "source_name": self.source.name,
            "source_loaded_from": info.get("loaded_from", info.get("path")),
            "source_sizes": {"ratings": len(self.rating), "users": self.m, "movies": self.n},
            "user_multiplier": self.user_copies,
            "movie_multiplier": self.movie_copies,
            "ratings": self.n_ratings,
            "seed": self.seed,
            "rank": self.rank,
            "chunk_ratings": self.chunk_ratings,
            "ids": "user a*m+i+1 is copy a of source user i, movie b*n+j+1 copy b of source "
            "movie j (0-based, ids in natural order); m, n: source_sizes users, movies",
        }

    def movies_table(self) -> pa.Table:
        """L copies of the catalogue: dense ids, "<title> [copy b]", the source's year, genres."""
        listed = self.source.movies.drop_duplicates("movie_id")  # one row, one id
        catalogue = listed.set_index("movie_id").loc[self.movie_ids]
        titles = catalogue["title"].astype(str).tolist()
        years = pa.array(catalogue["year"].astype("Int64"), pa.int64(), from_pandas=True)
        genres = pa.array([list(g) for g in catalogue["genres"]], pa.list_(pa.string()))
        tables = []
        for b in range(self.movie_copies):
            named = titles if b == 0 else [f"{t} [copy {b}]" for t in titles]
            ids = np.arange(b * self.n + 1, (b + 1) * self.n + 1)
            tables.append(
                pa.Table.from_arrays(
                    [_ids(ids), pa.array(named, pa.string()), years, genres],
                    schema=MOVIES_SCHEMA,
                )
            )
        return pa.concat_tables(tables)

    def users_table(self) -> pa.Table | None:
        """K copies of each source user's features, or None when the source has none."""
        if self.source.users is None:
            return None
        features = self.source.users.set_index("user_id").reindex(self.user_ids)
        columns = [
            pa.array(features["age"].astype("Int64"), pa.int64(), from_pandas=True),
            *(
                pa.array([None if v is None or v != v else str(v) for v in features[c]])
                for c in ("gender", "occupation", "zip")
            ),
        ]
        tables = [
            pa.Table.from_arrays(
                [_ids(np.arange(a * self.m + 1, (a + 1) * self.m + 1)), *columns],
                schema=USERS_SCHEMA,
            )
            for a in range(self.user_copies)
        ]
        return pa.concat_tables(tables)

    def rating_tables(self) -> Iterator[pa.Table]:
        """The expansion, a chunk of whole user copies at a time, by user then time.

        Each user copy's draws come from its own seeded stream, so the data does not
        depend on ``chunk_ratings``. Logs progress (ratings so far, ETA) every few seconds.
        """
        per_copy = max(1.0, self.n_ratings / self.user_copies)
        copies = max(1, int(self.chunk_ratings // per_copy))
        started = last = time.perf_counter()
        total = 0
        for a0 in range(0, self.user_copies, copies):
            parts = [self._copy(a) for a in range(a0, min(a0 + copies, self.user_copies))]
            table = pa.concat_tables(parts)
            total += table.num_rows
            yield table
            now = time.perf_counter()
            if now - last >= _PROGRESS_EVERY or a0 + copies >= self.user_copies:
                last = now
                done = min(a0 + copies, self.user_copies) / self.user_copies
                eta = (now - started) * (1 - done) / done
                logger.info(
                    "expand: %s ratings, %d of %d user copies (%.0f%%), %.0f s, ETA %.0f s",
                    f"{total:,}", min(a0 + copies, self.user_copies), self.user_copies, 100 * done,
                    now - started, eta,
                )  # fmt: skip
        self.ratings_written = total

    def _copy(self, a: int) -> pa.Table:
        """User copy ``a`` of every source user: each source rating kept in each movie
        copy ``b`` with probability ``P[a, b]``."""
        rng = np.random.default_rng([self.seed, 2, a])
        keep = self.probabilities[a].astype(np.float32)
        shift = rng.integers(0, MAX_SHIFT, size=self.m)
        copies = self.movie_copies
        step = max(1, _DRAWS // copies)
        pieces = []
        for s0 in range(0, len(self.user), step):
            s1 = min(s0 + step, len(self.user))
            hit_row, hit_copy = np.nonzero(rng.random((s1 - s0, copies), np.float32) < keep)
            entry = hit_row + s0
            pieces.append((entry, hit_copy))
        entry = np.concatenate([p[0] for p in pieces])
        copy = np.concatenate([p[1] for p in pieces]).astype(np.int64)
        user = self.user[entry]
        # rows come in source order (by user, then time) and copies in order inside a row
        return pa.Table.from_arrays(
            [
                _ids(a * self.m + user.astype(np.int64) + 1),
                _ids(copy * self.n + self.movie[entry] + 1),
                pa.array(self.rating[entry]),
                pa.array(self.timestamp[entry] + shift[user]),
            ],
            schema=RATINGS_SCHEMA,
        )


def _balance(affinity: np.ndarray, total: float, rounds: int = 500) -> np.ndarray:
    """``affinity`` scaled to sum ``total``, rows to ``total / K``, columns to ``total / L``,
    entries capped at 1 (Sinkhorn with a cap)."""
    rows, cols = total / affinity.shape[0], total / affinity.shape[1]
    p = affinity * (total / affinity.sum())
    for _ in range(rounds):
        p *= (rows / p.sum(axis=1))[:, None]
        np.minimum(p, 1.0, out=p)
        p *= (cols / p.sum(axis=0))[None, :]
        np.minimum(p, 1.0, out=p)
        if np.abs(p.sum(axis=1) / rows - 1).max() < 1e-6:
            break
    return p


def _codes(ids: Any, order: list[str]) -> np.ndarray:
    """Positions of ``ids`` (a Series of strings) in ``order``, as int32."""
    import pandas as pd

    codes = pd.Categorical(ids.astype(str), categories=order).codes
    return np.asarray(codes, np.int32)


def _ids(numbers: np.ndarray) -> pa.Array:
    return pa.array(numbers, pa.int64()).cast(pa.string())


def write_expansion(
    expansion: FractalExpansion, out_dir: str | Path, shard_size: int = 1_000_000
) -> dict[str, Any]:
    """Write ``expansion`` as movierec Parquet shards into ``out_dir``, whole or not at all.

    The shards are written into a staging directory beside ``out_dir`` and swapped in
    once ``meta.json`` is written, so a failure or Ctrl-C leaves no half-written data
    set (and an earlier data set at ``out_dir`` as it was).

    Raises:
        MovierecError: ``out_dir`` is a file, the source's own directory, or a non-empty
            directory that is not a movierec Parquet data set (never replaced).
    """
    from movierec.atomic import atomic_directory

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise MovierecError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / META_FILE).is_file():
        raise MovierecError(
            f"--out {out} holds files that are not a movierec Parquet data set; "
            "give a new or empty directory"
        )
    where = (expansion.source.source or {}).get("path")
    if where and out.exists() and Path(where).resolve() == out.resolve():
        raise MovierecError(f"--out {out} is the source data set's own directory")
    with atomic_directory(out, mode=0o755) as staging:
        return write_parquet_shards(expansion, staging, shard_size=shard_size)
