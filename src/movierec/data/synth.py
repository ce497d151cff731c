"""Synthetic MovieLens-shaped data of any size, streamed to Parquet shards.

Why: the real MovieLens sets stop at 25M ratings and cannot ship with tests. This
generator makes data in the normalised schema (:mod:`movierec.data.schema`) with
MovieLens' skew and a planted taste structure, so scale tests and benchmarks have
something realistic to train on, and it writes 20M+ ratings in bounded memory.

The model behind the numbers:

- ``clusters`` taste clusters with unit latent centres; every movie belongs to one
  (its genres follow the cluster) and has a Zipf-Mandelbrot popularity
  ``1 / (rank + c) ** movie_zipf`` (c = movies / 10K, within 1..10); every user has
  a primary and a secondary cluster.
- How many: user activity is Pareto-tailed (``user_pareto``), at least a few ratings
  each, at most a quarter of the catalogue; counts add up to ``ratings`` exactly
  (unless deduplication runs dry, see below).
- Which movies: with probability ``focus`` (per user, 0.5-0.9) a draw comes from the
  user's clusters (primary 70 %, secondary 30 %), otherwise from the whole catalogue;
  within that range movies are drawn by popularity.
- How high: latent affinity ``p_u . q_m`` + movie quality + user bias + noise, cut at
  quantiles that give MovieLens' star mix (about 6/11/27/34/22 % for 1..5 stars).

Duplicates: each user's draws are deduplicated (``np.unique`` on user*movies+movie
within a chunk of users) and the missing ones drawn again, three rounds from the
model, then from a uniform distribution over movies (heavy users end up rating
obscure titles, as real ones do). A user who is still short after eight rounds keeps
fewer ratings; ``meta.json`` records the actual count. No (user, movie) pair repeats.

Randomness: user and movie attributes come from streams seeded by ``seed``; each
chunk of users (about ``chunk_ratings`` ratings) has its own stream, so the same
``(users, movies, ratings, seed, settings)`` always gives the same data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from movierec.data.parquet_format import (
    MOVIES_SCHEMA,
    RATINGS_SCHEMA,
    USERS_SCHEMA,
    movies_frame,
    ratings_frame,
    users_frame,
)
from movierec.data.schema import Dataset
from movierec.errors import MovierecError

GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]  # fmt: skip
OCCUPATIONS = [
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
]  # fmt: skip
STAR_SHARES = np.array([0.06, 0.11, 0.27, 0.34, 0.22])  # MovieLens 1..5 stars, roughly
FIRST_TIME = 820_454_400  # 1996-01-01
LAST_TIME = 1_546_214_400  # 2018-12-31

_MODEL_ROUNDS = 3  # dedup refills drawn from the taste model before going uniform
_MAX_ROUNDS = 8


class SyntheticGenerator:
    """Latent structure of one synthetic data set; ratings come out chunk by chunk.

    Holds O(users + movies) arrays (about 100 bytes per user), never all ratings.
    """

    def __init__(
        self,
        users: int,
        movies: int,
        ratings: int,
        seed: int = 0,
        *,
        clusters: int | None = None,
        dim: int = 16,
        movie_zipf: float = 1.0,
        user_pareto: float = 1.6,
        chunk_ratings: int = 1_000_000,
    ):
        if users < 1 or movies < 2:
            raise MovierecError("a synthetic data set needs at least 1 user and 2 movies")
        self.max_per_user = max(1, movies // 4)
        if not users <= ratings <= users * self.max_per_user:
            raise MovierecError(
                f"ratings must be between users ({users}) and users x movies/4 "
                f"({users * self.max_per_user}), got {ratings}"
            )
        if chunk_ratings < 1 or dim < 1:
            raise MovierecError("chunk_ratings and dim must be positive")
        self.n_users, self.n_movies, self.n_ratings, self.seed = users, movies, ratings, seed
        self.clusters = clusters or int(np.clip(movies // 50, 2, 20))
        self.dim = dim
        self.movie_zipf = movie_zipf
        self.user_pareto = user_pareto
        self.chunk_ratings = chunk_ratings
        self._build_movies(np.random.default_rng([seed, 1]))
        self._build_users(np.random.default_rng([seed, 2]))
        self._thresholds = self._fit_thresholds(np.random.default_rng([seed, 3]))
        self.ratings_written: int | None = None

    #: Whole stars, 1 to 5, as MovieLens.
    rating_scale = (1.0, 5.0)

    @property
    def name(self) -> str:
        """The data set's name, spelling out its sizes and seed."""
        return f"synthetic-{self.n_users}u-{self.n_movies}m-{self.n_ratings}r-s{self.seed}"

    def settings(self) -> dict[str, Any]:
        """Everything that, with the seed, determines the data (recorded in meta.json)."""
        return {
            "users": self.n_users,
            "movies": self.n_movies,
            "ratings": self.n_ratings,
            "seed": self.seed,
            "clusters": self.clusters,
            "dim": self.dim,
            "movie_zipf": self.movie_zipf,
            "user_pareto": self.user_pareto,
            "chunk_ratings": self.chunk_ratings,
        }

    # -- latent structure ---------------------------------------------------------------

    def _build_movies(self, rng: np.random.Generator) -> None:
        m, k = self.n_movies, self.clusters
        centres = rng.standard_normal((k, self.dim))
        self.centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
        self.movie_cluster = rng.integers(0, k, size=m)
        rank = rng.permutation(m) + 1
        offset = np.clip(m / 10_000, 1.0, 10.0)  # flattens the very top, as in MovieLens
        self.popularity = 1.0 / (rank + offset) ** self.movie_zipf
        noise = rng.standard_normal((m, self.dim)).astype(np.float32) * 0.4
        self.movie_vec = self.centres[self.movie_cluster] + noise / np.sqrt(self.dim)
        log_pop = np.log(self.popularity)
        self.movie_quality = (
            rng.standard_normal(m) + 0.3 * (log_pop - log_pop.mean()) / (log_pop.std() + 1e-9)
        ).astype(np.float32)
        # Movies grouped by cluster, with cumulative popularity: a draw inside one cluster
        # (or the whole catalogue) is one searchsorted on this array.
        self._order = np.argsort(self.movie_cluster, kind="stable")
        self._cum = np.cumsum(self.popularity[self._order])
        sizes = np.bincount(self.movie_cluster, minlength=k)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        lo = np.concatenate([[0.0], self._cum])[starts]
        hi = np.concatenate([[0.0], self._cum])[ends]
        # range k (one past the clusters) stands for the whole catalogue
        self._range_start = np.append(starts, 0)
        self._range_end = np.append(ends, m)
        self._range_lo = np.append(lo, 0.0)
        self._range_mass = np.append(hi - lo, self._cum[-1])
        years = 2018 - np.floor(rng.exponential(14.0, size=m)).astype(np.int64)
        self.movie_year = np.clip(years - (self.movie_cluster % 4) * 3, 1920, 2018)
        secondary = (np.arange(k) * 7 + 3) % len(GENRES)
        anything = rng.integers(0, len(GENRES), (2, m))
        self._genre_draws = (  # the cluster's genre, maybe its second one, maybe any
            np.where(rng.random(m) < 0.85, self.movie_cluster % len(GENRES), anything[0]),
            np.where(rng.random(m) < 0.5, secondary[self.movie_cluster], -1),
            np.where(rng.random(m) < 0.2, anything[1], -1),
        )

    def _build_users(self, rng: np.random.Generator) -> None:
        u, k = self.n_users, self.clusters
        self.primary = rng.integers(0, k, size=u)
        self.secondary = (self.primary + rng.integers(1, k, size=u)) % k
        self.focus = rng.uniform(0.5, 0.9, size=u).astype(np.float32)
        noise = rng.standard_normal((u, self.dim), dtype=np.float32) * np.float32(0.5)
        self.user_vec = (
            np.float32(0.7) * self.centres[self.primary]
            + np.float32(0.3) * self.centres[self.secondary]
            + noise / np.float32(np.sqrt(self.dim))
        )
        self.user_bias = rng.standard_normal(u).astype(np.float32)
        self.counts = _allocate(rng, u, self.n_ratings, self.max_per_user, self.user_pareto)
        span = np.minimum(rng.exponential(180 * 86400.0, size=u) + 3600, LAST_TIME - FIRST_TIME)
        self.start = FIRST_TIME + (rng.random(u) * (LAST_TIME - FIRST_TIME - span)).astype(np.int64)
        self.span = span.astype(np.int64)
        # demographics lean on the primary cluster, so user features carry some signal
        age_mean = 20.0 + 4.0 * (np.arange(k) % 7)
        self.age = np.clip(np.rint(rng.normal(age_mean[self.primary], 9.0)), 7, 73).astype(np.int64)
        p_male = rng.uniform(0.3, 0.85, size=k)
        self.gender = np.where(rng.random(u) < p_male[self.primary], "M", "F")
        fav = rng.integers(0, len(OCCUPATIONS), size=k)
        self.occupation = np.where(
            rng.random(u) < 0.3, fav[self.primary], rng.integers(0, len(OCCUPATIONS), size=u)
        )
        self.zip = rng.integers(0, 100_000, size=u)

    def _draw_movies(self, rng: np.random.Generator, user: np.ndarray) -> np.ndarray:
        """One movie per entry of ``user``: cluster by taste, then movie by popularity."""
        r = rng.random(len(user), dtype=np.float32)
        focus = self.focus[user]
        rng_range = np.where(
            r < focus * 0.7,
            self.primary[user],
            np.where(r < focus, self.secondary[user], self.clusters),
        )
        target = self._range_lo[rng_range] + rng.random(len(user)) * self._range_mass[rng_range]
        pos = np.searchsorted(self._cum, target, side="right")
        pos = np.clip(pos, self._range_start[rng_range], self._range_end[rng_range] - 1)
        return self._order[pos]

    def _score(self, rng: np.random.Generator, user: np.ndarray, movie: np.ndarray) -> np.ndarray:
        affinity = np.einsum("ij,ij->i", self.user_vec[user], self.movie_vec[movie]) * 2.0
        noise = rng.standard_normal(len(user), dtype=np.float32)
        return affinity + 0.6 * self.movie_quality[movie] + 0.5 * self.user_bias[user] + 0.7 * noise

    def _fit_thresholds(self, rng: np.random.Generator) -> np.ndarray:
        """Score cut points giving MovieLens' star mix, from a pilot sample of ratings."""
        n = 200_000
        user = rng.choice(self.n_users, size=n, p=self.counts / self.counts.sum())
        scores = self._score(rng, user, self._draw_movies(rng, user))
        return np.quantile(scores, np.cumsum(STAR_SHARES)[:-1])

    # -- output -------------------------------------------------------------------------

    def movies_table(self) -> pa.Table:
        """The catalogue: ids, "Synthetic Movie <id> (<year>)" titles, years, genres."""
        ids = np.arange(1, self.n_movies + 1)
        draws = np.stack(self._genre_draws, axis=1)
        genres = []
        for row in draws.tolist():
            seen: list[str] = []
            for g in row:
                if g >= 0 and GENRES[g] not in seen:
                    seen.append(GENRES[g])
            genres.append(seen)
        titles = [
            f"Synthetic Movie {i} ({y})" for i, y in zip(ids, self.movie_year.tolist(), strict=True)
        ]
        return pa.Table.from_arrays(
            [_id_array(ids), pa.array(titles), pa.array(self.movie_year), pa.array(genres)],
            schema=MOVIES_SCHEMA,
        )

    def users_table(self) -> pa.Table:
        """Every user's id, age, gender, occupation and zip code."""
        zips = pc.utf8_lpad(pa.array(self.zip).cast(pa.string()), 5, "0")
        return pa.Table.from_arrays(
            [
                _id_array(np.arange(1, self.n_users + 1)),
                pa.array(self.age),
                pa.array(self.gender.astype(object)),
                pa.array(np.asarray(OCCUPATIONS, dtype=object)[self.occupation]),
                zips,
            ],
            schema=USERS_SCHEMA,
        )

    def rating_tables(self) -> Iterator[pa.Table]:
        """Ratings, a chunk of whole users at a time, sorted by user then time."""
        bounds = _chunk_bounds(self.counts, self.chunk_ratings)
        total = 0
        for number, (u0, u1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            rng = np.random.default_rng([self.seed, 4, number])
            table = self._chunk(rng, int(u0), int(u1))
            total += table.num_rows
            yield table
        self.ratings_written = total

    def _chunk(self, rng: np.random.Generator, u0: int, u1: int) -> pa.Table:
        want = self.counts[u0:u1]
        users = np.arange(u0, u1)
        user = np.empty(0, np.int64)
        movie = np.empty(0, np.int64)
        have = np.zeros(len(want), np.int64)
        for round_no in range(_MAX_ROUNDS):
            deficit = want - have
            if not deficit.any():
                break
            extra = np.ceil(deficit * (1.15 if round_no == 0 else 2.0)).astype(np.int64)
            extra[deficit > 0] += 2
            new_user = np.repeat(users, extra)
            if round_no < _MODEL_ROUNDS:
                new_movie = self._draw_movies(rng, new_user)
            else:
                new_movie = rng.integers(0, self.n_movies, size=len(new_user))
            user = np.concatenate([user, new_user])
            movie = np.concatenate([movie, new_movie])
            # drop repeated pairs, keeping the earliest (already accepted rows come first)
            _, first = np.unique((user - u0) * self.n_movies + movie, return_index=True)
            first.sort()
            user, movie = user[first], movie[first]
            # keep each user's first `want` movies, in draw order
            order = np.argsort(user, kind="stable")
            user, movie = user[order], movie[order]
            group_start = np.searchsorted(user, users)
            rank = np.arange(len(user)) - group_start[user - u0]
            keep = rank < want[user - u0]
            user, movie = user[keep], movie[keep]
            have = np.bincount(user - u0, minlength=len(want))
        stars = 1 + np.searchsorted(self._thresholds, self._score(rng, user, movie))
        time = self.start[user] + (rng.random(len(user)) * self.span[user]).astype(np.int64)
        order = np.lexsort((time, user))
        return pa.Table.from_arrays(
            [
                _id_array(user[order] + 1),
                _id_array(movie[order] + 1),
                pa.array(stars[order].astype(np.float32)),
                pa.array(time[order]),
            ],
            schema=RATINGS_SCHEMA,
        )


def _allocate(rng: np.random.Generator, n: int, total: int, cap: int, pareto: float) -> np.ndarray:
    """Per-user rating counts: Pareto-tailed, each in [floor, cap], summing to ``total``."""
    floor = int(max(1, min(20, total // n // 4)))
    weight = rng.pareto(pareto, size=n) + 1.0
    share = np.zeros(n)
    free = np.ones(n, bool)
    left = float(total - n * floor)
    for _ in range(50):  # water-filling: users at the cap give their excess to the rest
        share[free] += left * weight[free] / weight[free].sum()
        over = share > cap - floor
        left = float((share[over] - (cap - floor)).sum())
        share[over] = cap - floor
        free &= ~over
        if left < 1 or not free.any():
            break
    counts = np.floor(share).astype(np.int64)
    short = total - n * floor - int(counts.sum())
    room = np.flatnonzero(counts < cap - floor)
    if short > 0:
        frac = (share - counts)[room]
        counts[room[np.argsort(-frac, kind="stable")[:short]]] += 1
    return counts + floor


def _chunk_bounds(counts: np.ndarray, chunk_ratings: int) -> np.ndarray:
    """User boundaries so that each chunk holds about ``chunk_ratings`` ratings."""
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, np.arange(chunk_ratings, cum[-1], chunk_ratings), side="right")
    return np.unique(np.concatenate([[0], cuts, [len(counts)]]))


def _id_array(ids: np.ndarray) -> pa.Array:
    return pa.array(ids, type=pa.int64()).cast(pa.string())


def generate_synthetic(
    users: int, movies: int, ratings: int, seed: int = 0, **settings: Any
) -> Dataset:
    """A synthetic :class:`Dataset` in memory (see the module doc).

    For big sizes prefer ``write_parquet_shards(SyntheticGenerator(...), dir)`` from
    :mod:`movierec.data.parquet_format`, which streams.

    Args:
        users: Number of users (ids ``"1"`` to ``str(users)``).
        movies: Number of movies, at least 2.
        ratings: Number of ratings, between ``users`` and ``users * (movies // 4)``.
        seed: Seeds every random stream; the same arguments give the same data.
        **settings: :class:`SyntheticGenerator`'s keyword settings (``clusters``,
            ``dim``, ``movie_zipf``, ``user_pareto``, ``chunk_ratings``).

    Returns:
        The :class:`Dataset`, with users' features and ``source`` recording every setting.

    Raises:
        MovierecError: Sizes out of range, or a non-positive ``dim`` or ``chunk_ratings``.
    """
    gen = SyntheticGenerator(users, movies, ratings, seed, **settings)
    table = pa.concat_tables(list(gen.rating_tables()))
    return Dataset(
        name=gen.name,
        ratings=ratings_frame(table),
        movies=movies_frame(gen.movies_table()),
        users=users_frame(gen.users_table()),
        source={"kind": "synthetic", **gen.settings()},
    )
