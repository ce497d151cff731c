"""Shared fixtures: small planted data sets and models trained once per session.

The data sets, contract checks and process helpers live in :mod:`movierec.testing`;
this file only makes them fixtures. Training is what makes tests slow, so each trained
model here is made once per test session and shared; a test that changes a model
directory copies it first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# One XLA compilation cache for the whole test session, this process and the CLI
# processes it starts: the many small fits compile the same programs again and again.
# A fresh directory per session, so a run never leans on an earlier one.
_XLA_CACHE = tempfile.mkdtemp(prefix="movierec-test-xla-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _XLA_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from movierec.data.schema import Dataset  # noqa: E402  (after the cache settings)
from movierec.testing.planted import TINY, make_planted_dataset  # noqa: E402

if TYPE_CHECKING:
    from movierec.pipeline import Recommender


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true", help="also run tests marked slow (CI always does)"
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run in CI (``CI`` set, as in ``.ci/run``) or with ``--slow``;
    a local default run skips them, so it stays quick."""
    if config.getoption("--slow") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_dataset() -> Dataset:
    """30 users, 40 movies (39 and 40 never rated), with demographics; a fresh copy per
    test, so a test that mutates it cannot affect another."""
    return make_planted_dataset(**TINY)


@pytest.fixture
def planted_dataset() -> Dataset:
    return make_planted_dataset()


@pytest.fixture(scope="session")
def example_models(tmp_path_factory) -> tuple[Path, Recommender]:
    """The session's example model pair (:func:`movierec.testing.example.train_example_models`):
    (models directory, Recommender). Read-only: copy the directory to change it."""
    from movierec.testing.example import train_example_models

    return train_example_models(tmp_path_factory.mktemp("cli-models"))


@pytest.fixture(scope="session")
def example_pair(example_models):
    """The session's example pair as objects: (models directory, split, training set,
    retriever, ranker); read-only."""
    from movierec.testing.example import load_example_pair

    pair = load_example_pair(example_models[0])
    return pair.models, pair.split, pair.train, pair.retriever, pair.ranker


@pytest.fixture(scope="session")
def planted_shards(tmp_path_factory) -> Path:
    """The planted set as movierec Parquet shards (read-only), for streamed training."""
    from movierec.data.parquet_format import write_parquet_shards

    directory = tmp_path_factory.mktemp("planted-shards")
    write_parquet_shards(make_planted_dataset(), directory)
    return directory


#: Small two-tower and dcn settings for a history-aware pair trained in seconds.
SMALL_TWO_STAGE = {
    "retrieval": {"epochs": 10, "batch_size": 32, "embedding_dim": 16, "feature_dim": 4,
                  "hidden_dim": 16, "learning_rate": 1e-2, "item_item_rank": 16},
    "ranking": {"epochs": 6, "embedding_dim": 8, "hidden_units": 16, "users_per_batch": 32,
                "members": 1},
}  # fmt: skip


@pytest.fixture(scope="session")
def planted_two_stage():
    """The default models (two-tower and dcn, small settings, seed 3) trained on the
    planted set (:func:`make_planted_dataset`, every rating): a ``movierec.Recommender``
    whose answers follow each user's history; read-only, trained once per session."""
    import movierec

    return movierec.train(
        make_planted_dataset(),
        retrieval_settings=SMALL_TWO_STAGE["retrieval"],
        ranking_settings=SMALL_TWO_STAGE["ranking"],
        seed=3,
        verbose=0,
    )
