"""Merging ratings stored by the service into a training split (``train --ratings-db``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from movierec.data.stored_ratings import add_stored_ratings


def _ratings(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    return frame.astype({"rating": np.float32, "timestamp": np.int64})


def test_stored_ratings_replace_training_pairs_and_never_leak_test_pairs():
    train = _ratings([("u1", "m1", 1.0, 10), ("u1", "m2", 2.0, 11), ("u2", "m1", 3.0, 12)])
    test = _ratings([("u2", "m2", 4.0, 13)])
    movies = pd.DataFrame({"movie_id": ["m1", "m2", "m3"]})
    stored = _ratings([
        ("u1", "m1", 5.0, 20),       # replaces the training rating of the same pair
        ("u2", "m2", 5.0, 21),       # a test pair: would leak the answer
        ("u3", "m3", 4.0, 22),       # a new user
        ("u3", "gone", 4.0, 23),     # outside the catalogue
    ])  # fmt: skip
    merged, added = add_stored_ratings(train, test, stored, movies)
    assert added == 2
    pairs = {(u, m): r for u, m, r in merged[["user_id", "movie_id", "rating"]].itertuples(False)}
    assert pairs == {("u1", "m1"): 5.0, ("u1", "m2"): 2.0, ("u2", "m1"): 3.0, ("u3", "m3"): 4.0}
    assert merged.dtypes.to_dict() == train.dtypes.to_dict()
