"""Library calls leave the process as they found it: random generators, threads."""

from __future__ import annotations

import random

import numpy as np
import pytest

from movierec.data.training import TrainingSet

FAST = {
    ("retrieval", "example"): {"epochs": 2, "batch_size": 64},
    ("ranking", "example"): {"epochs": 2, "batch_size": 64},
    ("retrieval", "two-tower"): {"epochs": 2, "embedding_dim": 16, "hidden_dim": 0},
    ("ranking", "dcn"): {"epochs": 2, "members": 1, "embedding_dim": 8},
}


@pytest.mark.parametrize(
    "kind, name",
    [
        pytest.param(*key, marks=pytest.mark.slow) if key[1] in ("two-tower", "dcn") else key
        for key in FAST
    ],
)
def test_fit_leaves_global_random_state_alone(tiny_dataset, kind, name):
    from movierec.models.registry import model_class

    cls = model_class(kind, name)
    settings = FAST[(kind, name)]
    train = TrainingSet.build(tiny_dataset, tiny_dataset.ratings)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    first = cls(**settings, seed=5)
    first.fit(train, verbose=0)
    assert (random.random(), np.random.random()) == expected
    # Still seeded by its own setting: a second fit gives the same network.
    second = cls(**settings, seed=5)
    second.fit(train, verbose=0)
    for a, b in zip(first.network.weights, second.network.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))


def test_every_model_fit_is_wrapped():
    from movierec.models.registry import RANKERS, RETRIEVERS, model_class

    for kind, table in (("retrieval", RETRIEVERS), ("ranking", RANKERS)):
        for name in table:
            assert getattr(model_class(kind, name).fit, "_keeps_random_state", False), name
