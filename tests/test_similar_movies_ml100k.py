""""Movies like this one" on the real MovieLens 100K with the default two-tower model.

Marked slow: it fetches MovieLens 100K (from the recbole wheel on PyPI) and trains the
default retriever in full, as `movierec train retrieval` does.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data import load_dataset, make_split
from movierec.workflow import train_model

STAR_WARS, EMPIRE, JEDI = "50", "172", "181"
GODFATHER, GODFATHER_II = "127", "187"


@pytest.mark.slow
def test_sequels_are_among_the_five_most_similar_movies():
    dataset = load_dataset("ml-100k")
    split = make_split(dataset.ratings, "random", seed=42, test_fraction=0.2)
    result = train_model("retrieval", "two-tower", dataset, split.train, verbose=0)
    model, train = result.model, result.train

    def top5(movie_id: str) -> set[str]:
        index = train.movies.index(movie_id)
        scores = model.similar_scores(np.array([index]))[0]
        scores[[0, index]] = -np.inf
        return {train.movies.id_of(int(i)) for i in np.argsort(-scores)[:5]}

    assert {EMPIRE, JEDI} <= top5(STAR_WARS)
    assert GODFATHER_II in top5(GODFATHER)
