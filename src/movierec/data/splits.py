"""Train/test splits of a ratings table, recorded so a model can say how it was evaluated.

- ``random``: a seeded random fraction of (user, movie) pairs; the result depends
  only on the ratings and the seed, not on the order of the rows.
- ``temporal``: one global time cutoff; the latest ratings are the test set
  (no peeking into the future, as in a real deployment).
- ``leave-last-n``: each user's last ``n`` ratings are the test set (next-item style).
- ``hash``: each rating's side is a keyed hash of (user, movie, seed), decided row
  by row: what training streamed from Parquet shards uses (:class:`HashSplit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from movierec.errors import DataError, MovierecError

METHODS = ("random", "temporal", "leave-last-n", "hash")
#: Fewest ratings :func:`check_evaluable` accepts: the least a split can learn from and test.
MIN_RATINGS = 10
#: Largest data set whose every test rating :func:`check_evaluable` looks up (well under
#: a second); a larger one whose test ratings all have new users or movies is not met.
CHECK_ALL_UP_TO = 2_000_000
#: Sides of a :class:`HashSplit`, in the order of its codes.
PARTS = ("train", "validation", "test")


@dataclass
class Split:
    """Train and test ratings, and ``info``: the method, its parameters and counts."""

    train: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def random_split(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 42) -> Split:
    """Test set = a random ``test_fraction`` of the distinct (user, movie) pairs.

    Pairs are numbered in sorted order before shuffling, so shuffled input rows
    give the same split; repeated ratings of one pair stay on one side.
    """
    _check_fraction(test_fraction)
    pairs = ratings.groupby(["user_id", "movie_id"], sort=True).ngroup().to_numpy()
    n_pairs = int(pairs.max()) + 1 if len(pairs) else 0
    n_test = _test_count(n_pairs, test_fraction)
    order = np.random.default_rng(seed).permutation(n_pairs)
    is_test_pair = np.zeros(n_pairs, dtype=bool)
    is_test_pair[order[:n_test]] = True
    mask = is_test_pair[pairs]
    return _make(ratings, mask, {"method": "random", "seed": seed, "test_fraction": test_fraction})


def temporal_split(ratings: pd.DataFrame, test_fraction: float = 0.2) -> Split:
    """Test set = the latest ``test_fraction`` of ratings by timestamp (one global cutoff)."""
    _check_fraction(test_fraction)
    n_test = _test_count(len(ratings), test_fraction)
    order = _sorted_positions(ratings, ["timestamp", "user_id", "movie_id"])
    mask = np.zeros(len(ratings), dtype=bool)
    mask[order[len(ratings) - n_test :]] = True
    info: dict[str, Any] = {"method": "temporal", "seed": None, "test_fraction": test_fraction}
    if n_test:
        info["cutoff_timestamp"] = int(ratings["timestamp"].to_numpy()[mask].min())
    return _make(ratings, mask, info)


def leave_last_n_split(ratings: pd.DataFrame, n: int = 1) -> Split:
    """Each user's last ``n`` ratings go to test; users with ``<= n`` ratings stay in train."""
    if int(n) != n or n < 1:
        raise MovierecError(f"n must be a positive integer, got {n!r}")
    order = _sorted_positions(ratings, ["user_id", "timestamp", "movie_id"])
    ordered = ratings.iloc[order]
    from_end = ordered.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    counts = ordered.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    mask = np.zeros(len(ratings), dtype=bool)
    mask[order] = (from_end < n) & (counts > n)
    return _make(ratings, mask, {"method": "leave-last-n", "seed": None, "n": int(n)})


@dataclass(frozen=True)
class HashSplit:
    """Random split decided per rating: keyed hash of (user, movie) -> uniform draw.

    ``validation_fraction`` of the *training* ratings is held out for early stopping.
    Repeated ratings of one pair land on the same side, as in the in-memory random split.
    """

    test_fraction: float = 0.2
    validation_fraction: float = 0.0
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise MovierecError(f"test fraction must be between 0 and 1, not {self.test_fraction}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise MovierecError(
                f"validation fraction must be in [0, 1), not {self.validation_fraction}"
            )

    def parts(self, user_id: pa.Array, movie_id: pa.Array) -> np.ndarray:
        """Per row: 0 = train, 1 = validation, 2 = test (indices into :data:`PARTS`)."""
        keys = pc.binary_join_element_wise(
            pc.cast(user_id, pa.string()), pc.cast(movie_id, pa.string()), "\x1f"
        )
        hashed = pd.util.hash_array(
            keys.to_numpy(zero_copy_only=False),
            hash_key=f"movierec{self.seed % 2**32:08x}",
            categorize=False,
        )
        draw = (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)
        validation_end = self.test_fraction + self.validation_fraction * (1 - self.test_fraction)
        part = np.zeros(len(draw), np.int8)
        part[draw < validation_end] = PARTS.index("validation")
        part[draw < self.test_fraction] = PARTS.index("test")
        return part

    def info(self) -> dict[str, Any]:
        """The split's method and parameters, for the model manifest."""
        return {
            "method": "hash",
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "validation_fraction": self.validation_fraction,
        }


def hash_split(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 42) -> Split:
    """The test side of a :class:`HashSplit` over an in-memory table (validation stays in train)."""
    split = HashSplit(test_fraction, 0.0, seed)
    parts = split.parts(pa.array(ratings["user_id"]), pa.array(ratings["movie_id"]))
    info = split.info()
    info.pop("validation_fraction")
    return _make(ratings, parts == PARTS.index("test"), info)


def make_split(
    ratings: pd.DataFrame,
    method: str = "random",
    seed: int = 42,
    test_fraction: float = 0.2,
    n: int = 1,
) -> Split:
    """Dispatch by method name (as given on the command line).

    Args:
        ratings: Ratings frame to split.
        method: ``random``, ``temporal``, ``leave-last-n`` (or ``leave-last``) or
            ``hash``; case and ``_`` for ``-`` do not matter.
        seed: Seed of ``random`` and ``hash``.
        test_fraction: Share held out by ``random``, ``temporal`` and ``hash``.
        n: Ratings per user ``leave-last-n`` holds out.

    Returns:
        The :class:`Split`, with fresh indices.

    Raises:
        MovierecError: An unknown method, a fraction outside (0, 1), or an ``n`` that
            is not a positive integer.
    """
    key = method.strip().lower().replace("_", "-")
    if key == "random":
        return random_split(ratings, test_fraction=test_fraction, seed=seed)
    if key == "temporal":
        return temporal_split(ratings, test_fraction=test_fraction)
    if key in ("leave-last-n", "leave-last"):
        return leave_last_n_split(ratings, n=n)
    if key == "hash":
        return hash_split(ratings, test_fraction=test_fraction, seed=seed)
    raise MovierecError(f"unknown split method {method!r}; choose one of {', '.join(METHODS)}")


def check_evaluable(ratings: pd.DataFrame, split: Any, name: str = "the data set") -> None:
    """Refuse a split that nothing could be measured on, before any training.

    A test rating measures a model only if its user and its movie both also have
    training ratings (a user is queried with their training history; a movie no
    training rating names has no embedding): a split without one would train, then
    report metrics of ``nan``.

    Args:
        ratings: The ratings that were split.
        split: Their split: a :class:`Split`, or anything with its ``train``, ``test``
            and ``info`` (the Python API's ``DataSplit``).
        name: The data set's name, for the message.

    Raises:
        DataError: Fewer than :data:`MIN_RATINGS` ratings, an empty side, or (up to
            :data:`CHECK_ALL_UP_TO` ratings) no test rating whose user and movie are in
            the training ratings; the message says what is needed.
    """
    method = split.info.get("method", "the")
    if len(ratings) < MIN_RATINGS:
        raise DataError(
            f"{name} has {len(ratings)} rating(s); training needs at least {MIN_RATINGS}, "
            "from users with 2 or more ratings each, to hold some out for testing"
        )
    if split.test.empty or split.train.empty:
        side = "test" if split.test.empty else "training"
        raise DataError(
            f"the {method} split of {name}'s {len(ratings)} ratings leaves no {side} ratings; "
            + ("leave-last-n tests only users with more than n ratings"
               if method == "leave-last-n" else "change --test-fraction")
        )
    if len(ratings) > CHECK_ALL_UP_TO:
        return

    def seen(column: str) -> np.ndarray:
        trained = pd.Index(pd.unique(split.train[column]))
        return trained.get_indexer(split.test[column]) >= 0

    if not (seen("user_id") & seen("movie_id")).any():
        repeat_users = int((ratings.groupby("user_id").size() >= 2).sum())
        raise DataError(
            f"none of the {len(split.test)} test rating(s) of the {method} split of {name} "
            "has a user and a movie that also have training ratings, so no metric could be "
            "computed; training needs users with at least 2 ratings and movies rated at "
            f"least twice ({name} has {repeat_users} user(s) with 2 or more ratings)"
        )


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise MovierecError(f"test fraction must be between 0 and 1, got {test_fraction!r}")


def _test_count(total: int, test_fraction: float) -> int:
    return int(round(total * test_fraction))


def _sorted_positions(ratings: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Row positions sorted by ``columns`` (ties broken by the later columns, stably)."""
    keys = ratings[columns].reset_index(drop=True)
    return keys.sort_values(columns, kind="stable").index.to_numpy()


def _make(ratings: pd.DataFrame, test_mask: np.ndarray, info: dict[str, Any]) -> Split:
    train = ratings.loc[~test_mask].reset_index(drop=True)
    test = ratings.loc[test_mask].reset_index(drop=True)
    info.update(
        train_ratings=int(len(train)),
        test_ratings=int(len(test)),
        train_users=int(train["user_id"].nunique()),
        test_users=int(test["user_id"].nunique()),
    )
    return Split(train=train, test=test, info=info)


#: ``manifest["split"]["method"]`` of a model trained on every rating (refitted after
#: its evaluation, or trained with no held-out part).
ALL_RATINGS = "all"


def split_from_manifest(ratings: pd.DataFrame, info: dict[str, Any]) -> Split:
    """The split a saved model records (its manifest's ``split``), made again.

    The one place that reads a recorded split back, so ``evaluate`` and the tests
    re-create exactly what training used. A model refitted on every rating records
    its evaluation split under ``"holdout"``; that split is the one returned.

    Args:
        ratings: The same ratings the model was trained from (check the digest first).
        info: ``manifest["split"]``.

    Returns:
        The re-created :class:`Split`.

    Raises:
        MovierecError: The record names no split that can be re-created (a model
            trained on every rating with no held-out part).
    """
    info = info.get("holdout", info) if info.get("method") == ALL_RATINGS else info
    if info.get("method") in (None, ALL_RATINGS, "none"):
        raise MovierecError("the model was trained on every rating: there is no held-out split")
    return make_split(
        ratings,
        method=info["method"],
        seed=42 if info.get("seed") is None else info["seed"],
        test_fraction=info.get("test_fraction") or 0.2,
        n=info.get("n") or 1,
    )
