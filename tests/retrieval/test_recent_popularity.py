"""The "popular when the user was last active" prior, on planted timestamps."""

import numpy as np
import pandas as pd

from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.retrieval.recent_popularity import recent_popularity


def _train(rows):
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    movies = pd.DataFrame({"movie_id": sorted(ratings["movie_id"].unique())})
    movies["title"] = [f"Movie {m}" for m in movies["movie_id"]]
    return TrainingSet.build(Dataset(name="timed", ratings=ratings, movies=movies), ratings)


def test_counts_follow_the_time_and_users_get_their_latest_bucket():
    # Movie 1 is rated by everyone early on, movie 2 only late; user 1 also rates movie 3
    # in the middle of the log.
    rows = [(user, 1, 4.0, 100 + user) for user in range(1, 11)]
    rows += [(user, 2, 4.0, 1_000 + user) for user in range(11, 21)]
    rows.append((1, 3, 3.0, 500))
    train = _train(rows)
    popularity = recent_popularity(train, buckets=2)
    m1, m2 = train.movies.lookup(pd.Series([1, 2]))
    assert popularity.buckets == 2
    latest, earliest = popularity.table[:, 0], popularity.table[:, 1]
    assert latest[m2] > latest[m1]  # recent popularity, not all-time counts
    assert earliest[m1] > earliest[m2]
    # A user's bucket is that of their latest rating.
    users = train.users.lookup(pd.Series([2, 15]))
    assert list(popularity.user_bucket[users]) == [1, 0]
    assert popularity.user_bucket[0] == 0  # the padding user


def test_repeated_timestamps_give_fewer_buckets_not_empty_ones():
    rows = [(user, 1 + user % 3, 4.0, 7) for user in range(1, 30)]
    popularity = recent_popularity(_train(rows), buckets=16)
    assert popularity.buckets == 1
    assert np.isfinite(popularity.table).all()
    assert (popularity.user_bucket == 0).all()
