"""Request and response bodies of the HTTP service (they make /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from movierec.pipeline import MAX_REASONS
from movierec.serving.store import MAX_ID_LENGTH

MAX_K = 100
MAX_RATINGS = 1000
MAX_MOVIE_IDS = 1000
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
    items: list[Movie]
    timings_ms: dict[str, float]


class VisitorQuery(BaseModel):
    """A visitor described only by the movies they rated (at least one, as for an unknown
    user id: with nothing to go on there is no personal answer to give)."""

    model_config = STRICT
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_RATINGS)
    k: Count = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
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


class Version(BaseModel):
    movierec: str
    model_version: str = Field(
        description="digest of both models' artifact checksums: changes with every new model"
    )
    models_dir: str | None
    loaded_at: str = Field(description="when these models went live (UTC)")
    reloads: int = Field(description="successful reloads since start")
    retrieval: dict[str, Any]
    ranking: dict[str, Any] | None
