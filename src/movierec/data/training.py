"""Training ratings turned into the index arrays models consume.

A :class:`TrainingSet` fixes the vocabularies (movies: the whole catalogue, so
unrated movies still get candidate embeddings; users: those with training
ratings) and holds each user's history, which history-aware models use and
which recommendation uses to exclude watched movies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from movierec.data.histories import Histories
from movierec.data.schema import Dataset
from movierec.data.vocab import Vocabulary


@dataclass
class TrainingSet:
    """Training ratings as vocabulary indices, with the data set they came from.

    ``user_index``, ``movie_index`` and ``rating`` are parallel arrays, one entry per
    row of ``ratings``; index 0 of each vocabulary is the unknown id.
    """

    dataset: Dataset
    ratings: pd.DataFrame
    users: Vocabulary
    movies: Vocabulary
    user_index: np.ndarray = field(repr=False)
    movie_index: np.ndarray = field(repr=False)
    rating: np.ndarray = field(repr=False)

    @classmethod
    def build(
        cls,
        dataset: Dataset,
        ratings: pd.DataFrame,
        users: Vocabulary | None = None,
        movies: Vocabulary | None = None,
    ) -> TrainingSet:
        """Index ``ratings`` (normally the train split of ``dataset``).

        Pass vocabularies to reuse those of a saved model (fine-tuning, evaluation).

        Args:
            dataset: The data set; its catalogue joins the movie vocabulary.
            ratings: Ratings frame to index (normalised columns).
            users: User vocabulary to reuse; by default built from ``ratings``.
            movies: Movie vocabulary to reuse; by default built from the catalogue and
                ``ratings``.

        Returns:
            The indexed :class:`TrainingSet`; ids unknown to a reused vocabulary map to 0.
        """
        users = users or Vocabulary.from_ids(ratings["user_id"])
        movies = movies or Vocabulary.from_ids(
            pd.concat([dataset.movies["movie_id"], ratings["movie_id"]])
        )
        return cls(
            dataset=dataset,
            ratings=ratings,
            users=users,
            movies=movies,
            user_index=users.lookup(ratings["user_id"]),
            movie_index=movies.lookup(ratings["movie_id"]),
            rating=ratings["rating"].to_numpy(dtype=np.float32),
        )

    def __len__(self) -> int:
        return len(self.rating)

    def write_ratings(self, path: Path) -> None:
        """Save the training ratings (a model keeps them for histories and exclusions)."""
        self.ratings.to_parquet(path, index=False)

    def describe(self) -> dict[str, Any]:
        """The data set's counts and ranges (see :meth:`Dataset.describe`)."""
        return self.dataset.describe()

    @cached_property
    def by_user(self) -> Histories:
        """Each user's training ratings, grouped once: every served query and every
        evaluated user looks a history up in it."""
        return Histories.from_ratings(
            self.user_index, self.movie_index, self.rating, self.users.size
        )

    def histories(self) -> list[np.ndarray]:
        """Movie indices each user rated, by user index (entry 0, the OOV user, is empty)."""
        by_user = self.by_user
        return [by_user.of(u)[0] for u in range(self.users.size)]
