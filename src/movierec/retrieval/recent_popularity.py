"""What was popular when a user was last active: a time-aware prior for the two-tower.

People watch what is out and talked about at the time: a user's next ratings follow what
everyone rated around their own latest ratings far more than what was popular over the
whole log. The prior cuts the training ratings by time into buckets of equal counts
(bucket 0 the latest), counts each movie's ratings per bucket, and scores a movie for a
user by its (log, standardised) count in the bucket of that user's latest training
rating. Equal counts rather than equal time spans keep every bucket's counts equally
reliable whether the log covers months or decades. Users the model does not know, and
visitors, get the latest bucket: what is popular now.

It fits the dot-product index like the other paths: the candidate carries its row of
per-bucket counts, the query a scaled one-hot of its bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.training import TrainingSet


@dataclass
class RecentPopularity:
    """Per-bucket popularity and each user's bucket.

    Attributes:
        table: (movies, buckets) float32; column ``b`` is ``log(1 + ratings in bucket
            b)`` standardised over the catalogue, so one weight means the same at any
            catalogue size. Bucket 0 is the latest.
        user_bucket: (users,) int32 bucket of each user's latest training rating
            (0 for the padding user and for users without ratings).
    """

    table: np.ndarray
    user_bucket: np.ndarray

    @property
    def buckets(self) -> int:
        """How many time buckets the table has (at most the number asked for)."""
        return self.table.shape[1]


def recent_popularity(train: TrainingSet, buckets: int) -> RecentPopularity:
    """Count ``train``'s ratings per movie in ``buckets`` spans of time holding equal counts.

    Args:
        train: the training ratings (needs their ``timestamp``).
        buckets: how many spans; fewer when timestamps repeat so much that spans coincide.

    Returns:
        The standardised per-bucket table and each user's bucket.
    """
    stamps = train.ratings["timestamp"].to_numpy(np.float64)
    users, movies = np.asarray(train.user_index), np.asarray(train.movie_index)
    if len(stamps) == 0:
        return RecentPopularity(
            np.zeros((train.movies.size, 1), np.float32), np.zeros(train.users.size, np.int32)
        )
    # Inner edges, ascending and distinct; a time's bucket counts the edges at or after it.
    edges = np.unique(np.quantile(stamps, np.linspace(0.0, 1.0, buckets + 1)[1:-1]))
    edges = edges[edges > stamps.min()]  # an edge at the first time would leave one empty

    def bucket_of(times: np.ndarray) -> np.ndarray:
        """Each time's bucket: 0 for the latest span, counting back."""
        return len(edges) - np.searchsorted(edges, times, side="right")

    counts = np.zeros((train.movies.size, len(edges) + 1), np.float64)
    np.add.at(counts, (movies, bucket_of(stamps)), 1.0)
    logs = np.log1p(counts[1:])  # row 0 is the padding movie
    spread = logs.std(axis=0)
    table = np.zeros_like(counts)
    table[1:] = (logs - logs.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    latest = np.full(train.users.size, -np.inf)
    np.maximum.at(latest, users, stamps)
    user_bucket = np.zeros(train.users.size, np.int64)
    known = np.isfinite(latest)
    user_bucket[known] = bucket_of(latest[known])
    return RecentPopularity(table.astype(np.float32), user_bucket.astype(np.int32))
