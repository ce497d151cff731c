"""Ratings people gave through the service, merged into a training split.

Why here and not in :mod:`movierec.serving.store`: merging is a data step of training
(``movierec train --ratings-db``), and training should not depend on the HTTP service's
package. The store only reads the ratings back; this module decides which may be
trained on.
"""

from __future__ import annotations

import pandas as pd

from movierec.data.schema import RATING_COLUMNS


def add_stored_ratings(
    train: pd.DataFrame, test: pd.DataFrame, stored: pd.DataFrame, movies: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """``train`` plus the stored ratings that may be trained on, and how many those are.

    Stored ratings of movies outside the catalogue are dropped (nothing to show),
    so are those of a (user, movie) pair in ``test`` (it would leak the answer);
    a stored rating replaces a training rating of the same pair (it is newer).

    Args:
        train: The training ratings of the split.
        test: The test ratings of the split; their pairs are never trained on.
        stored: Ratings read back from the service's store (at least the
            :data:`~movierec.data.schema.RATING_COLUMNS`).
        movies: The catalogue (its ``movie_id`` column).

    Returns:
        The merged training ratings (``train``'s dtypes, a fresh index) and the number
        of stored ratings in them.
    """
    keep = stored["movie_id"].isin(movies["movie_id"])
    test_pairs = pd.MultiIndex.from_frame(test[["user_id", "movie_id"]])
    keep &= ~pd.MultiIndex.from_frame(stored[["user_id", "movie_id"]]).isin(test_pairs)
    stored = stored.loc[keep, RATING_COLUMNS]
    stored_pairs = pd.MultiIndex.from_frame(stored[["user_id", "movie_id"]])
    replaced = pd.MultiIndex.from_frame(train[["user_id", "movie_id"]]).isin(stored_pairs)
    merged = pd.concat([train.loc[~replaced], stored.astype(train.dtypes.to_dict())])
    return merged.reset_index(drop=True), len(stored)
