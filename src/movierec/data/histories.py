"""Every user's rated movies and stars as compressed rows (CSR): 8 bytes a rating.

Why not a padded (users x width) table: with a million users and width 256 that is
2 GB whatever the users rated; compressed rows cost what the ratings cost, and a
training batch pads only the few users it holds (:meth:`Histories.padded`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

#: (user index, movie index, rating) arrays of one chunk of ratings.
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]


def positions_in_runs(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., length - 1 for each run in turn, concatenated (a rating's place in its
    user's rows, a pair's place in its group) without a Python loop over the runs."""
    lengths = np.asarray(lengths, np.int64)
    return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)


@dataclass
class Histories:
    """User ``u``'s ratings are ``movies[offsets[u]:offsets[u + 1]]`` (and ``ratings``),
    in the order they were given."""

    offsets: np.ndarray
    movies: np.ndarray
    ratings: np.ndarray

    @property
    def num_users(self) -> int:
        """Rows of the table: the user vocabulary's size."""
        return len(self.offsets) - 1

    @classmethod
    def from_ratings(
        cls, user_index: np.ndarray, movie_index: np.ndarray, rating: np.ndarray, num_users: int
    ) -> Histories:
        """Group in-memory ratings by user (stable: rating order is kept).

        Args:
            user_index: Each rating's user index, in ``0..num_users-1``.
            movie_index: Each rating's movie index.
            rating: Each rating's stars.
            num_users: Size of the user vocabulary (users without ratings get empty rows).

        Returns:
            The grouped :class:`Histories`.
        """
        return cls.from_chunks(lambda: [(user_index, movie_index, rating)], num_users)

    @classmethod
    def from_chunks(cls, chunks: Callable[[], Iterable[Chunk]], num_users: int) -> Histories:
        """Two passes over ``chunks()`` (count, then fill), so no chunk outlives its turn."""
        counts = np.zeros(num_users, np.int64)
        for user, _, _ in chunks():
            counts += np.bincount(user, minlength=num_users)[:num_users]
        offsets = np.zeros(num_users + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        movies = np.zeros(int(offsets[-1]), np.int32)
        ratings = np.zeros(int(offsets[-1]), np.float32)
        filled = offsets[:-1].copy()
        for user, movie, rating in chunks():
            user = np.asarray(user)
            order = np.argsort(user, kind="stable")
            here = np.bincount(user, minlength=num_users)[:num_users]
            # Each rating's slot: its user's next free row plus its place in the user's run.
            slot = filled[user[order]] + positions_in_runs(here)
            movies[slot] = np.asarray(movie)[order]
            ratings[slot] = np.asarray(rating)[order]
            filled += here
        return cls(offsets, movies, ratings)

    def padded(self, users: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, width) movie indices (0 = padding) and stars: each user's last ``width``
        ratings, left-aligned. Users outside the table get an empty row."""
        users = np.asarray(users, np.int64)
        known = (users >= 0) & (users < self.num_users)
        safe = np.where(known, users, 0)
        ends = self.offsets[safe + 1]
        lengths = np.where(known, np.minimum(ends - self.offsets[safe], width), 0)
        columns = np.arange(width)
        valid = columns[None, :] < lengths[:, None]
        take = np.where(valid, (ends - lengths)[:, None] + columns[None, :], 0)
        if not len(self.movies):  # nothing to gather from: every row is padding
            shape = (len(users), width)
            return np.zeros(shape, np.int32), np.zeros(shape, np.float32)
        movies = np.where(valid, self.movies[take], 0).astype(np.int32)
        stars = np.where(valid, self.ratings[take], 0.0).astype(np.float32)
        return movies, stars

    def of(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """One user's movies and stars, in rating order (views, not copies)."""
        start, end = self.offsets[user], self.offsets[user + 1]
        return self.movies[start:end], self.ratings[start:end]


def pad_lists(
    lists: list[np.ndarray], values: list[np.ndarray], rows: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, width) ids (0 = padding) and their values from ragged per-row lists.

    Rows past ``len(lists)`` stay padding; a list longer than ``width`` keeps its last
    ``width`` entries (the latest, for histories in rating order).

    Args:
        lists: One array of ids per row (at most ``rows`` of them).
        values: The matching values, one array per row, each as long as its list.
        rows: Rows of the result.
        width: Columns of the result.

    Returns:
        ``(ids, values)``: (rows, width) int32 ids and float32 values, left-aligned.
    """
    ids = np.zeros((rows, width), np.int32)
    out = np.zeros((rows, width), np.float32)
    for row, (items, vals) in enumerate(zip(lists, values, strict=True)):
        items, vals = items[-width:] if width else items[:0], vals[-width:] if width else vals[:0]
        ids[row, : len(items)] = items
        out[row, : len(items)] = vals
    return ids, out
