"""Feedback besides stars: "watched" and "not interested", and what each one weighs.

A person can say they watched a movie without rating it, or that they are not
interested in it. Both mean "never recommend it to me again". Beyond that:

* ``watched`` is a weak positive: it stands in for a rating of
  ``feedback_watched_level`` on the model's scale, in that user's next answers (as an
  extra rating) and in ``movierec train --ratings-db`` (as a training rating).
* ``not-interested`` pushes the ``feedback_similar`` movies most like it down that
  user's lists by ``feedback_push`` standard deviations of the ordering score, and
  trains as a rating of ``feedback_not_interested_level``.

A stored rating of the same (user, movie) wins over feedback in training and in the
query (stars say more). The service stores feedback (:mod:`movierec.serving.store`);
this module owns what it means, for answers and for training alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import pandas as pd

from movierec.models.settings import ModelSettings, setting

WATCHED = "watched"
NOT_INTERESTED = "not-interested"
#: The feedback types, as the store, the HTTP API and the Python API spell them.
FEEDBACK_TYPES = (WATCHED, NOT_INTERESTED)
FeedbackType = Literal["watched", "not-interested"]


@dataclass(frozen=True)
class FeedbackSettings(ModelSettings):
    """What each feedback type weighs: ``movierec train --ratings-db ... --set KEY=VALUE``
    (listed by ``--help-settings``); the trained models' manifests record them, and the
    answers from those models use the same values."""

    model_name = "feedback"

    feedback_watched_level: float | None = setting(
        0.625,
        "stars a 'watched' row stands for, as a share of the rating scale (0 = lowest, "
        "1 = highest; 0.625 = 3.5 on 1-5: a weak positive), in answers and training; "
        "null: excluded only",
        minimum=0.0,
        maximum=1.0,
    )
    feedback_not_interested_level: float | None = setting(
        0.0,
        "stars a 'not-interested' row trains as, as a share of the rating scale (0 = the "
        "lowest stars); null: not trained on",
        minimum=0.0,
        maximum=1.0,
    )
    feedback_similar: int = setting(
        10,
        "how many of a 'not-interested' movie's most similar movies its user's lists push down",
        minimum=0,
    )
    feedback_push: float = setting(
        1.0,
        "how far they are pushed: this many standard deviations of the ordering score "
        "over the candidates",
        minimum=0.0,
    )

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> FeedbackSettings:
        """The settings a model was trained with (its manifest's split records them
        under ``stored_ratings.feedback``), else the defaults."""
        stored = (manifest.get("split") or {}).get("stored_ratings") or {}
        values = stored.get("feedback") or {}
        known = set(cls.names())
        return cls(**cls.check({k: v for k, v in values.items() if k in known}))


def level_stars(level: float, scale: tuple[float, float]) -> float:
    """The stars at ``level`` (0 to 1) of the rating ``scale`` (low, high)."""
    low, high = scale
    return float(low + level * (high - low))


def check_feedback_type(kind: str) -> FeedbackType:
    """``kind`` when it is a feedback type; a ValueError naming the valid ones otherwise."""
    if kind not in FEEDBACK_TYPES:
        raise ValueError(
            f"unknown feedback type {kind!r}; expected one of {', '.join(FEEDBACK_TYPES)}"
        )
    return cast(FeedbackType, kind)


def feedback_as_ratings(
    feedback: pd.DataFrame,
    ratings: pd.DataFrame,
    settings: FeedbackSettings,
    scale: tuple[float, float],
) -> pd.DataFrame:
    """Stored feedback as training ratings, for ``train --ratings-db``.

    Each type becomes a rating at its level of ``scale``; a type whose level is
    ``None`` is left out, and so is feedback on a (user, movie) pair that has a
    rating in ``ratings`` (the stars win).

    Args:
        feedback: Rows with ``user_id``, ``movie_id``, ``type`` and ``timestamp``.
        ratings: The stored ratings (their pairs take precedence).
        settings: The levels of each type.
        scale: The data set's (lowest, highest) stars.

    Returns:
        A frame in the ratings schema (``user_id``, ``movie_id``, ``rating``,
        ``timestamp``).
    """
    levels = {
        WATCHED: settings.feedback_watched_level,
        NOT_INTERESTED: settings.feedback_not_interested_level,
    }
    stars_of = {k: None if v is None else level_stars(v, scale) for k, v in levels.items()}
    stars = feedback["type"].map(stars_of)
    keep = stars.notna().to_numpy().copy()
    if len(ratings):
        rated = pd.MultiIndex.from_frame(ratings[["user_id", "movie_id"]])
        keep &= ~pd.MultiIndex.from_frame(feedback[["user_id", "movie_id"]]).isin(rated)
    rows = feedback.loc[keep, ["user_id", "movie_id", "timestamp"]].assign(
        rating=stars[keep].astype("float32")
    )
    return rows[["user_id", "movie_id", "rating", "timestamp"]].reset_index(drop=True)


def split_feedback(
    feedback: Iterable[tuple[str, str]],
) -> tuple[list[str], list[str]]:
    """``(movie_id, type)`` pairs as (watched ids, not-interested ids), each in order."""
    watched: list[str] = []
    not_interested: list[str] = []
    for movie, kind in feedback:
        (watched if check_feedback_type(kind) == WATCHED else not_interested).append(str(movie))
    return watched, not_interested
