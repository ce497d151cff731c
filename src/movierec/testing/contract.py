"""The contract every retriever and ranker keeps, as checks any test suite can call.

Each check trains nothing itself unless it says so, raises :class:`AssertionError`
with what went wrong, and needs no test framework; ``tests/models/test_model_contract.py``
runs them against every model in :mod:`movierec.models.registry`, and a model kept
outside this package can run them in its own tests::

    from movierec.testing import contract, make_planted_dataset

    dataset = make_planted_dataset()
    ...
    contract.check_ranker_beats_the_global_mean(model, train, split.test)

The planted data (:mod:`movierec.testing.planted`) gives each check a known answer:
two taste groups, each liking one half of the catalogue.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from movierec.data.training import TrainingSet
from movierec.errors import ModelError, UnknownIdError
from movierec.models.artifacts import load_model
from movierec.models.base import QueryBatch, RecommenderModel
from movierec.models.registry import RANKERS, RETRIEVERS, model_class
from movierec.testing.planted import movie_taste, user_taste

#: A model as (kind, registry name): ("retrieval", "two-tower").
ModelKey = tuple[str, str]

#: Settings small enough for a few seconds of training each, per registered model.
SMALL_SETTINGS: dict[ModelKey, dict[str, Any]] = {
    ("retrieval", "two-tower"): {"epochs": 8, "batch_size": 32, "embedding_dim": 16,
                                 "feature_dim": 4, "hidden_dim": 16, "learning_rate": 1e-2,
                                 "item_item_rank": 16, "seed": 5},
    ("retrieval", "example"): {"epochs": 30, "batch_size": 64, "seed": 5},
    ("ranking", "dcn"): {"epochs": 6, "embedding_dim": 8, "hidden_units": 16,
                         "users_per_batch": 32, "members": 1, "seed": 5},
    ("ranking", "example"): {"epochs": 40, "batch_size": 64, "seed": 5},
}  # fmt: skip


def registered_models() -> list[ModelKey]:
    """Every model in the registry, retrievers first."""
    return [("retrieval", n) for n in RETRIEVERS] + [("ranking", n) for n in RANKERS]


def fit_small(key: ModelKey, train: TrainingSet) -> RecommenderModel:
    """Train a registered model with its :data:`SMALL_SETTINGS` (quiet).

    Args:
        key: The model, as (kind, name).
        train: The training set.

    Returns:
        The fitted model.
    """
    kind, name = key
    model = model_class(kind, name)(**SMALL_SETTINGS[key])
    model.fit(train, verbose=0)
    return model


def model_answers(model: Any, train: TrainingSet) -> np.ndarray:
    """What a model says about every known user, for comparing two models.

    Args:
        model: A fitted retriever or ranker.
        train: The training set it knows.

    Returns:
        The query scores of every movie for a retriever; the predicted stars of every
        (user, movie) pair for a ranker.
    """
    users = np.arange(1, train.users.size, dtype=np.int32)
    queries = QueryBatch.from_training(train, users)
    if model.kind == "retrieval":
        scores: np.ndarray = model.query_embeddings(queries) @ model.candidate_embeddings().T
        return scores
    movies = np.arange(1, train.movies.size, dtype=np.int32)
    pairs = queries.take(np.repeat(np.arange(len(users)), len(movies)))
    stars: np.ndarray = model.predict(pairs, np.tile(movies, len(users)))
    return stars


def _raises(error: type[Exception], call: Callable[[], object], match: str | None = None) -> None:
    """Check that ``call()`` raises ``error`` (with ``match`` in its message)."""
    try:
        call()
    except error as exc:
        if match is not None and not re.search(match, str(exc)):
            raise AssertionError(f"{error.__name__} without {match!r}: {exc}") from exc
        return
    raise AssertionError(f"expected {error.__name__}")


def check_retriever_learns_the_planted_taste(
    recommender: Any, users: Iterable[str], *, least_share: float = 0.75
) -> float:
    """A retriever's top 10 lie mostly in each user's own taste group, far more than
    the most popular movies (the same list for everyone) do.

    Args:
        recommender: A :class:`movierec.pipeline.Recommender` over the retriever.
        users: Planted user ids to ask about (test users, say).
        least_share: The mean share of own-taste movies to reach; chance is 0.5 (half
            the catalogue is each group's).

    Returns:
        The mean share reached.
    """
    popular = np.array([movie_taste(r.movie_id) for r in recommender.popular(10)])
    shares, baseline = [], []
    for user in users:
        top = [r.movie_id for r in recommender.recommend(user, k=10).items]
        groups = np.array([movie_taste(m) for m in top])
        shares.append(np.mean(groups == user_taste(user)))
        baseline.append(np.mean(popular == user_taste(user)))
    share, popular_share = float(np.mean(shares)), float(np.mean(baseline))
    assert share > least_share, f"own-taste share {share:.2f} <= {least_share}"
    assert share > popular_share + 0.2, f"{share:.2f} against popularity's {popular_share:.2f}"
    return share


def check_ranker_beats_the_global_mean(
    model: Any, train: TrainingSet, test: pd.DataFrame
) -> tuple[float, float]:
    """A ranker's test RMSE is below that of always predicting the training mean.

    Args:
        model: A fitted ranker.
        train: Its training set.
        test: Held-out ratings of known users and movies.

    Returns:
        (the model's RMSE, the global mean's RMSE).
    """
    queries = QueryBatch.from_training(train, train.users.lookup(test["user_id"]))
    predicted = model.predict(queries, train.movies.lookup(test["movie_id"]))
    actual = test["rating"].to_numpy()
    constant = float(np.sqrt(np.mean((actual - train.rating.mean()) ** 2)))
    rmse = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    assert rmse < constant, f"RMSE {rmse:.3f} not below the global mean's {constant:.3f}"
    return rmse, constant


def check_save_and_load_give_identical_answers(
    model: Any, train: TrainingSet, directory: Path
) -> None:
    """A model loaded from ``directory`` has the same settings and the same answers.

    Args:
        model: The fitted model that was saved.
        train: Its training set.
        directory: Where :func:`movierec.models.artifacts.save_model` wrote it.
    """
    loaded = load_model(directory)
    assert loaded.model.settings == model.settings, "settings changed on the way"
    np.testing.assert_allclose(
        model_answers(loaded.model, loaded.train),
        model_answers(model, train),
        rtol=1e-5,
        atol=1e-5,
    )


def check_unknown_ids_are_refused_and_seen_movies_excluded(
    recommender: Any, train_ratings: pd.DataFrame, users: Iterable[str] = ("1", "2", "3")
) -> None:
    """Unknown users and movies raise :class:`UnknownIdError`; answers leave out watched movies.

    Args:
        recommender: A :class:`movierec.pipeline.Recommender` (with a ranker, the rank
            checks run too).
        train_ratings: The training ratings (what each user has watched).
        users: Known users whose answers are checked.
    """
    _raises(UnknownIdError, lambda: recommender.recommend("no-such-user", k=5))
    if recommender.ranking is not None:
        _raises(UnknownIdError, lambda: recommender.rank("1", ["no-such-movie"]))
        _raises(UnknownIdError, lambda: recommender.rank("no-such-user", ["1"]))
    _raises(UnknownIdError, lambda: recommender.similar("no-such-movie", k=5))
    for user in users:
        seen = set(train_ratings.loc[train_ratings["user_id"] == user, "movie_id"])
        shown = [r.movie_id for r in recommender.recommend(user, k=20).items]
        assert shown, f"no recommendations for user {user}"
        assert not seen & set(shown), f"user {user} was shown watched movies"
        kept = [r.movie_id for r in recommender.recommend(user, k=60, exclude_seen=False).items]
        assert seen & set(kept), "exclude_seen=False still left out every watched movie"


def check_same_seed_gives_the_same_model(key: ModelKey, train: TrainingSet, model: Any) -> None:
    """Training ``key`` again with the same settings gives ``model``'s answers (trains once).

    Args:
        key: The model, as (kind, name), trained with :data:`SMALL_SETTINGS`.
        train: The training set ``model`` was fitted on.
        model: The model fitted earlier by :func:`fit_small`.
    """
    np.testing.assert_allclose(
        model_answers(fit_small(key, train), train),
        model_answers(model, train),
        rtol=1e-5,
        atol=1e-5,
    )


def check_load_refuses_unknown_settings(directory: Path, scratch: Path) -> None:
    """A saved model whose manifest has a setting this version does not know is refused.

    Args:
        directory: A saved model (left as it is: the check edits a copy).
        scratch: An empty directory for the copy.
    """
    copy = scratch / "model"
    shutil.copytree(directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["settings"]["retired_setting"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _raises(ModelError, lambda: load_model(copy), match="retired_setting")
