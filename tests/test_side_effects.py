"""Library calls leave the process as they found it: random generators, threads."""

from __future__ import annotations

import random

import numpy as np
import pytest

from movierec.data.training import TrainingSet


@pytest.mark.parametrize(
    "model_path",
    ["movierec.retrieval.example:ExampleRetriever", "movierec.ranking.example:ExampleRanker"],
)
def test_fit_leaves_global_random_state_alone(tiny_dataset, model_path):
    import importlib

    module, _, name = model_path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    train = TrainingSet.build(tiny_dataset, tiny_dataset.ratings)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    first = cls(epochs=2, batch_size=64, seed=5)
    first.fit(train, verbose=0)
    assert (random.random(), np.random.random()) == expected
    # Still seeded by its own setting: a second fit gives the same network.
    second = cls(epochs=2, batch_size=64, seed=5)
    second.fit(train, verbose=0)
    for a, b in zip(first.network.weights, second.network.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))


def test_every_model_fit_is_wrapped():
    from movierec.models.registry import RANKERS, RETRIEVERS, model_class

    for kind, table in (("retrieval", RETRIEVERS), ("ranking", RANKERS)):
        for name in table:
            assert getattr(model_class(kind, name).fit, "_keeps_random_state", False), name
