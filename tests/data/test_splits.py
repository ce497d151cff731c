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


def test_check_evaluable_says_what_a_split_needs(tiny_dataset):
    """Splits nothing could be measured on are refused, with what is missing."""
    import pandas as pd

    from movierec.data.splits import MIN_RATINGS, check_evaluable
    from movierec.errors import DataError

    r = tiny_dataset.ratings
    check_evaluable(r, random_split(r, seed=1), "tiny")  # a usable split passes
    few = r.iloc[:3]
    with pytest.raises(DataError, match=f"tiny has 3 rating\\(s\\); training needs at least "
                                        f"{MIN_RATINGS}"):
        check_evaluable(few, random_split(few), "tiny")
    # Twelve users with one rating each: every test rating's user is new to training.
    singles = r.groupby("user_id").head(1).head(12).reset_index(drop=True)
    with pytest.raises(DataError, match="none of the 2 test rating\\(s\\) of the random split "
                                        "of tiny has a user and a movie that also have "
                                        "training ratings.*tiny has 0 user\\(s\\) with 2"):
        check_evaluable(singles, random_split(singles), "tiny")
    with pytest.raises(DataError, match="leaves no test ratings; leave-last-n tests only users "
                                        "with more than n ratings"):
        check_evaluable(singles, leave_last_n_split(singles, n=1), "tiny")
    # A test rating of a known user but an unrated-in-training movie measures nothing either.
    later = int(r["timestamp"].max()) + 1
    known_user = pd.concat([r.iloc[:12].assign(user_id="1"), r.iloc[:1].assign(
        user_id="1", movie_id="9999", timestamp=later)], ignore_index=True)
    split = make_split(known_user, "temporal", test_fraction=0.05)  # the last one: movie 9999
    assert list(split.test["movie_id"]) == ["9999"]
    with pytest.raises(DataError, match="none of the 1 test rating"):
        check_evaluable(known_user, split, "tiny")
