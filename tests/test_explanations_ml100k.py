"""Explanations are true on the real MovieLens 100K with the default models.

Marked slow: it fetches MovieLens 100K (from the recbole wheel on PyPI, once, into the
data home) and trains the default two-tower and dcn on all of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_explanations import faithfulness

import movierec

USERS = 40


@pytest.mark.slow
def test_removing_the_named_ratings_lowers_the_score_more_than_random_ones():
    recommender = movierec.train(movierec.load_data("ml-100k"), seed=42, verbose=0)
    engine = recommender.engine
    rng = np.random.default_rng(0)
    users = sorted(rng.choice(engine.retrieval.train.users.ids, USERS, replace=False).tolist())
    named, random = faithfulness(engine, users, seed=1)
    print(f"named {named.mean():.4f}, random {random.mean():.4f}, "
          f"named > random for {np.mean(named > random):.0%} of {USERS} users")  # fmt: skip
    assert np.all(named > 0)
    assert np.mean(named > random) >= 0.9
    assert named.mean() > 2 * random.mean()
