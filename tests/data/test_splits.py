"""Split methods: sizes, disjointness, determinism, time order, per-user properties."""

from __future__ import annotations

import pytest

from movierec.data import make_split
from movierec.data.splits import leave_last_n_split, random_split, temporal_split
from movierec.errors import MovierecError


def pairs(frame):
    return set(zip(frame["user_id"], frame["movie_id"], strict=True))


def test_random_split_sizes_and_disjoint(tiny_dataset):
    r = tiny_dataset.ratings
    split = random_split(r, test_fraction=0.25, seed=1)
    assert len(split.test) == round(len(r) * 0.25)
    assert len(split.train) + len(split.test) == len(r)
    assert not pairs(split.train) & pairs(split.test)
    assert split.info["method"] == "random" and split.info["seed"] == 1
    assert split.info["test_ratings"] == len(split.test)


def test_random_split_deterministic(tiny_dataset):
    r = tiny_dataset.ratings
    a, b = random_split(r, seed=3), random_split(r, seed=3)
    assert pairs(a.test) == pairs(b.test)
    assert pairs(random_split(r, seed=4).test) != pairs(a.test)
    shuffled = r.sample(frac=1.0, random_state=0)
    assert pairs(random_split(shuffled, seed=3).test) == pairs(a.test)


def test_temporal_split(tiny_dataset):
    r = tiny_dataset.ratings
    split = temporal_split(r, test_fraction=0.2)
    assert len(split.test) == round(len(r) * 0.2)
    assert split.test["timestamp"].min() >= split.train["timestamp"].max()
    assert split.info["cutoff_timestamp"] == split.test["timestamp"].min()


def test_leave_last_n(tiny_dataset):
    r = tiny_dataset.ratings
    # user "1" keeps only 2 ratings: with n=2 it stays wholly in train
    r = r.drop(r.index[r["user_id"] == "1"][2:])
    split = leave_last_n_split(r, n=2)
    assert "1" not in set(split.test["user_id"])
    assert (split.train["user_id"] == "1").sum() == 2
    counts = split.test["user_id"].value_counts()
    assert (counts == 2).all() and len(counts) == r["user_id"].nunique() - 1
    last_train = split.train.groupby("user_id")["timestamp"].max()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.loc[first_test.index]).all()
    assert not pairs(split.train) & pairs(split.test)


@pytest.mark.parametrize("method", ["random", "temporal", "leave-last-n", "Leave_Last_N"])
def test_make_split_dispatch(tiny_dataset, method):
    split = make_split(tiny_dataset.ratings, method, seed=0, test_fraction=0.3, n=1)
    assert split.info["method"] == method.lower().replace("_", "-")
    assert len(split.train) + len(split.test) == len(tiny_dataset.ratings)


def test_make_split_bad_input(tiny_dataset):
    with pytest.raises(MovierecError, match="unknown split method"):
        make_split(tiny_dataset.ratings, "kfold")
    with pytest.raises(MovierecError, match="between 0 and 1"):
        make_split(tiny_dataset.ratings, "random", test_fraction=1.5)
    with pytest.raises(MovierecError, match="positive"):
        make_split(tiny_dataset.ratings, "leave-last-n", n=0)
