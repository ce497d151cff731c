"""Request and response bodies of the HTTP service (they make /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from movierec.feedback import FeedbackType
from movierec.pipeline import MAX_REASONS
from movierec.serving.store import MAX_ID_LENGTH

MAX_K = 100
MAX_RATINGS = 1000
MAX_MOVIE_IDS = 1000
#: The furthest a list can be paged (offset): beyond any catalogue the service is for.
MAX_OFFSET = 100_000
#: Movie ids one request body may leave out (``exclude``) ...
MAX_EXCLUDE = 1000
#: ... and one URL: 64 of the longest ids, percent-encoded, stay well under the 80 KiB
#: that uvicorn's HTTP parser takes for a request line and headers.
MAX_EXCLUDE_QUERY = 64
# Request bodies are strict: a rating is a JSON number (not true, not "5"), a count an
# integer (not 5.0), a flag a boolean; unknown fields are refused.
STRICT = ConfigDict(extra="forbid", strict=True)
# An id: 1 to 64 characters, no NUL (PostgreSQL cannot store it in text).
ID_PATTERN = r"^[^\x00]+$"
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def _whole_number(value: object) -> object:
    """8.0 is the integer 8 in JSON (and JSON Schema); 8.5, "8" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]


class Error(BaseModel):
    """The body of every error answer except 422."""

    detail: str


class Reason(BaseModel):
    """One of the user's own ratings behind a recommendation: "because you rated ..."."""

    movie_id: str
    title: str
    rating: float = Field(description="the user's stars for it")
    contribution: float = Field(
        description="how much the recommendation's score (retrieval score + weight x "
        "predicted stars) falls when this rating is left out of the history; above 0"
    )


class Movie(BaseModel):
    movie_id: str
    title: str
    year: int | None = None
    genres: list[str] = []
    score: float | None = Field(None, description="retrieval score / similarity")
    predicted_rating: float | None = Field(None, description="predicted stars (ranking model)")
    because: list[Reason] | None = Field(
        None,
        max_length=MAX_REASONS,
        description="with explain: up to three of the user's ratings that raised this "
        "recommendation's score most, largest first (empty when none did); else null",
    )
    co_raters: int | None = Field(
        None, description="in similar: users who rated both movies in training"
    )
    shared_genres: list[str] | None = Field(
        None, description="in similar: the genres the two movies have in common"
    )


class MovieList(BaseModel):
    items: list[Movie]


class Similar(BaseModel):
    movie: Movie
    items: list[Movie]
    score_meaning: str = Field(
        description="what each item's score (its similarity to the movie) is and its scale",
        examples=["score = cosine of the two movies' embeddings (-1 to 1, higher is more alike)"],
    )


class RatingIn(BaseModel):
    """One rating given by a person; the scale is checked against the model's."""

    model_config = STRICT
    movie_id: Id
    rating: float = Field(allow_inf_nan=False, examples=[4.0])


class StoredRating(BaseModel):
    user_id: str
    movie_id: str
    rating: float
    timestamp: int
    created: bool = Field(description="false when it replaced an earlier rating")


class UserRatings(BaseModel):
    user_id: str
    known_to_model: bool
    history: int = Field(description="ratings the model was trained with")
    ratings: list[Movie] = Field(description="stored ratings; predicted_rating holds the stars")


class Recommendations(BaseModel):
    user_id: str | None
    known_to_model: bool
    used_ratings: int = Field(description="ratings used on top of the training history")
    used_feedback: int = Field(0, description="'watched' and 'not-interested' rows used")
    offset: int = Field(0, description="where in the list these items start")
    next_offset: int = Field(description="the offset of the next page (offset + number of items)")
    items: list[Movie]
    timings_ms: dict[str, float]


class FeedbackIn(BaseModel):
    """Feedback without stars: ``watched`` (seen, no rating: never recommended again, a
    weak positive) or ``not-interested`` (never recommended again; the most similar
    movies are pushed down)."""

    model_config = STRICT
    movie_id: Id
    type: FeedbackType = Field(examples=["not-interested"])


class StoredFeedback(BaseModel):
    user_id: str
    movie_id: str
    type: FeedbackType
    timestamp: int
    created: bool = Field(
        description="false when it replaced this movie's earlier feedback (the deleted "
        "row, in a DELETE answer)"
    )


class FeedbackMovie(Movie):
    type: FeedbackType
    timestamp: int


class UserFeedback(BaseModel):
    user_id: str
    items: list[FeedbackMovie] = Field(description="the user's feedback rows, oldest first")


class VisitorQuery(BaseModel):
    """A visitor described only by the movies they rated (at least one, as for an unknown
    user id: with nothing to go on there is no personal answer to give)."""

    model_config = STRICT
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_RATINGS)
    k: Count = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    offset: Count = Field(0, ge=0, le=MAX_OFFSET, description="skip this many: the next page")
    exclude: list[Id] = Field(
        [], max_length=MAX_EXCLUDE, description="movie ids never to return (already shown, ...)"
    )
    watched: list[Id] = Field(
        [], max_length=MAX_MOVIE_IDS, description="watched without a rating: a weak positive"
    )
    not_interested: list[Id] = Field(
        [], max_length=MAX_MOVIE_IDS, description="never returned; their look-alikes pushed down"
    )
    explain: bool = Field(
        False, description="give each movie the visitor's ratings that raised it most"
    )


class RankQuery(BaseModel):
    """A known user, stored/explicit ratings, or both; and the movies to score."""

    # The JSON schema says what the validator below checks: a user id, or ratings.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["user_id"], "properties": {"user_id": {"type": "string"}}},
                {
                    "required": ["ratings"],
                    "properties": {"ratings": {"type": "array", "minItems": 1}},
                },
            ]
        },
    )
    user_id: Id | None = None
    ratings: list[RatingIn] | None = Field(None, max_length=MAX_RATINGS)
    movie_ids: list[Id] = Field(min_length=1, max_length=MAX_MOVIE_IDS)

    @model_validator(mode="after")
    def _someone(self) -> RankQuery:
        if self.user_id is None and not self.ratings:
            raise ValueError("give a user_id or a non-empty list of ratings")
        return self


class Live(BaseModel):
    status: str


class Health(BaseModel):
    status: str
    users: int
    movies: int
    ranking: bool


class RetrainStatus(BaseModel):
    every_seconds: float = Field(description="the period of `serve --retrain-every`")
    running: bool = Field(description="whether a retrain runs now")
    last_result: str | None = Field(
        description="ok, failed, rejected (failed verification), timeout or reload_refused; "
        "null before the first run"
    )
    next_at: str | None = Field(description="when the next retrain starts (UTC)")


class Version(BaseModel):
    movierec: str
    model_version: str = Field(
        description="digest of both models' artifact checksums: changes with every new model"
    )
    models_dir: str | None
    loaded_at: str = Field(description="when these models went live (UTC)")
    reloads: int = Field(description="successful reloads since start")
    trained_at: str | None = Field(
        None, description="when the live retrieval model was trained (UTC, its manifest's created)"
    )
    trained_on_ratings: int = Field(
        description="ratings the live retrieval model was trained on, stored ones included"
    )
    trained_on_stored_ratings: int = Field(
        description="of those, ratings stored through this service (train --ratings-db)"
    )
    retrain: RetrainStatus | None = Field(
        None, description="the schedule of `serve --retrain-every`; null without one"
    )
    retrieval: dict[str, Any]
    ranking: dict[str, Any] | None
