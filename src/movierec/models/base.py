"""What every retrieval and ranking model offers the rest of movierec.

Models work on indices (see :mod:`movierec.data.vocab`); the pipeline turns raw
ids into a :class:`QueryBatch`. A query carries the user's index (0 when the
user is unknown to the model) *and* their rating history, so history-aware
models can serve a visitor with no trained id; id-only models ignore the history.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import sparse

from movierec.atomic import atomic_file
from movierec.data.histories import Histories
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.seeding import keeps_random_state
from movierec.models.settings import ModelSettings, SettingsError

if TYPE_CHECKING:  # Keras loads only when a model trains or a network is read
    import keras



@dataclass
class QueryBatch:
    """``n`` users to score: indices plus, per user, the movies they rated and how."""

    user_index: np.ndarray
    histories: list[np.ndarray] = field(default_factory=list)
    history_ratings: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.user_index = np.asarray(self.user_index, dtype=np.int32).reshape(-1)
        n = len(self.user_index)
        if not self.histories:
            self.histories = [np.zeros(0, np.int32) for _ in range(n)]
        if not self.history_ratings:
            self.history_ratings = [np.zeros(len(h), np.float32) for h in self.histories]
        if len(self.histories) != n or len(self.history_ratings) != n:
            raise ValueError("histories and history_ratings need one entry per user")

    def __len__(self) -> int:
        return len(self.user_index)

    def take(self, rows: np.ndarray) -> QueryBatch:
        """The queries at ``rows`` (used for batching and for pairwise predictions)."""
        return QueryBatch(
            self.user_index[rows],
            [self.histories[i] for i in rows],
            [self.history_ratings[i] for i in rows],
        )

    def leave_one_out(self) -> QueryBatch:
        """``1 + n`` queries from this one query of ``n`` rated movies: row 0 is the query
        itself, row ``1 + j`` the same user without the ``j``-th movie of the history
        (what explanations compare, :meth:`Retriever.leave_one_out_embeddings`)."""
        if len(self) != 1:
            raise ValueError("leave_one_out takes a batch of one query")
        movies, stars = self.histories[0], self.history_ratings[0]
        keep = ~np.eye(len(movies), dtype=bool)
        return QueryBatch(
            np.repeat(self.user_index, len(movies) + 1),
            [movies, *(movies[row] for row in keep)],
            [stars, *(stars[row] for row in keep)],
        )

    @classmethod
    def from_training(cls, train: TrainingSet, user_index: np.ndarray) -> QueryBatch:
        """Queries for known users, each with their full training history."""
        return cls.from_histories(train.by_user, user_index)

    @classmethod
    def from_histories(cls, by_user: Histories, user_index: np.ndarray) -> QueryBatch:
        """Queries for users of ``by_user``, each with their full history there."""
        user_index = np.asarray(user_index, dtype=np.int32)
        empty = (np.zeros(0, np.int32), np.zeros(0, np.float32))
        views = [by_user.of(u) if 0 <= u < by_user.num_users else empty for u in user_index]
        return cls(user_index, [v[0] for v in views], [v[1] for v in views])


class RecommenderModel(ABC):
    """Shared life cycle: construct with settings, ``fit``, save and load."""

    #: Name used on the command line (``--model NAME``) and in manifests.
    name: ClassVar[str]
    #: "retrieval" or "ranking".
    kind: ClassVar[str]

    #: File the Keras network is saved to inside the model directory.
    network_file: ClassVar[str] = "model.keras"
    #: Whether ``fit`` also takes a :class:`~movierec.data.shards.ShardedTrainingSet`
    #: (training streamed from Parquet shards) besides an in-memory TrainingSet.
    streams: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every model's ``fit`` seeds its own training but leaves the caller's global
        random generators as they were (see :mod:`movierec.models.seeding`)."""
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = keeps_random_state(cls.fit)  # type: ignore[method-assign]  # wraps each override once

    #: The model's typed settings (types, bounds, help); ``settings`` is checked against it.
    settings_class: ClassVar[type[ModelSettings]]

    def __init__(self, **settings: Any):
        self.settings: dict[str, Any] = self.settings_class.check(settings)
        self.network: keras.Model | None = None
        #: The training set of the last ``fit`` or ``load`` (histories, rating cosine).
        self.train: TrainingSet | None = None

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """Every setting the model takes, with its default (recorded in the manifest)."""
        return cls.settings_class.defaults()

    @abstractmethod
    def fit(self, train: TrainingSet, *, verbose: int = 1) -> dict[str, list[float]]:
        """Train on ``train``; returns the Keras history (loss per epoch...).

        ``train`` is a :class:`~movierec.data.shards.ShardedTrainingSet` (streamed from
        Parquet shards) only for models whose :attr:`streams` is true, and their ``fit``
        says so in its signature (``TrainingSet | ShardedTrainingSet``). Both kinds offer
        the vocabularies, the data set and the rating histories; a model reads each kind
        through its own code path, never by testing a flag.
        """

    def save(self, directory: Path) -> None:
        """Write the model's own files into ``directory`` (which exists).

        The Keras network goes to :attr:`network_file`, then :meth:`save_extras` adds
        what the model keeps beside it; each file is written whole or not at all.
        """
        network = self.require_network()
        with atomic_file(Path(directory) / self.network_file) as tmp:
            network.save(tmp)
        self.save_extras(Path(directory))

    def save_extras(self, directory: Path) -> None:
        """Write files besides the network (override; the default writes none)."""
        return None

    @classmethod
    def load(
        cls, directory: Path, settings: dict[str, Any], train: TrainingSet
    ) -> RecommenderModel:
        """Rebuild a model that :meth:`save` wrote, given its settings and training set.

        Every model loads the same way: the settings are checked as strictly as for
        training (a setting this version does not know is an error, not dropped), the
        network must fit the training set's vocabularies, and :meth:`restore` reads
        what :meth:`save_extras` wrote.

        Raises:
            ModelError: The network file is missing, unreadable or of another shape, or
                the saved settings do not fit this model.
        """
        import keras

        path = Path(directory) / cls.network_file
        if not path.is_file():
            raise ModelError(f"{cls.name}: {path} is missing")
        try:
            model = cls(**settings)
        except SettingsError as error:
            raise ModelError(
                f"{cls.name}: the settings saved in {directory} do not fit this version "
                f"({error}); train the model again"
            ) from error
        try:
            network = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises many kinds on a corrupt or foreign file
            raise ModelError(f"{cls.name}: cannot load {path}: {error}") from error
        sizes = (getattr(network, "num_users", None), getattr(network, "num_movies", None))
        if sizes != (train.users.size, train.movies.size):
            raise ModelError(
                f"{cls.name}: {path} was trained on {sizes[1]} movie and {sizes[0]} user rows, "
                f"the training set has {train.movies.size} and {train.users.size}"
            )
        model.network, model.train = network, train
        model.restore(Path(directory), train)
        return model

    def restore(self, directory: Path, train: TrainingSet) -> None:
        """Read back what :meth:`save_extras` wrote (override; the default reads none)."""
        return None

    def require_network(self) -> keras.Model:
        """The trained network, or a clear error when fit/load has not run."""
        if self.network is None:
            raise ModelError(f"{self.name} model is not trained yet: call fit() or load()")
        return self.network


class Retriever(RecommenderModel):
    """A two-tower model: query embeddings · candidate embeddings = retrieval scores."""

    kind = "retrieval"

    @abstractmethod
    def query_embeddings(self, queries: QueryBatch) -> np.ndarray:
        """Float32 array (n, d), one row per query."""

    @abstractmethod
    def candidate_embeddings(self) -> np.ndarray:
        """Float32 array (movies.size, d): row i embeds movie index i (row 0: unknown)."""

    def leave_one_out_embeddings(self, query: QueryBatch) -> np.ndarray:
        """(1 + n, d) query embeddings of one query of ``n`` rated movies: row 0 the query
        as given, row ``1 + j`` without its ``j``-th history movie, so that
        ``(row 0 - row 1 + j) . candidate`` is how much that rating raised the candidate's
        score (exact, whatever the query tower). By default the ``1 + n`` queries go
        through :meth:`query_embeddings` (a tower that reads ``n`` movies then reads
        about ``n * n``); a model may override it with a cheaper exact computation."""
        return self.query_embeddings(query.leave_one_out())

    def similar_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(movies.size, m) query-side and candidate-side vectors whose dot product is the
        similarity of two movies ("movies like this one"): by default both are the unit
        candidate embeddings (cosine). Saved models export them, so ``similar`` needs no
        network."""
        unit = unit_rows(self.candidate_embeddings())
        return unit, unit

    def similar_scores(self, movie_index: np.ndarray) -> np.ndarray:
        """(n, movies.size) similarity of each given movie to every movie: the
        ``similar_vectors`` product, plus ``similar_rating_weight`` (a setting; 0 when the
        model has none) times the cosine of the movies' centred training ratings."""
        weight = float(self.settings.get("similar_rating_weight", 0.0))
        return MovieSimilarity(self.similar_vectors(), self.train, weight).scores(movie_index)


class MovieSimilarity:
    """"Movies like this one": a retriever's similar vectors, plus the ratings' cosine.

    One object serves a trained retriever (:meth:`Retriever.similar_scores`) and a saved
    model's exported vectors (the pipeline's ``similar``), so both score alike; the
    rating rows are built on first use and kept.

    Args:
        vectors: The (movies, m) query-side and candidate-side similar vectors.
        train: The training set whose ratings give the cosine (None: vectors only).
        rating_weight: Weight of the standardised rating cosine (0: vectors only).
    """

    def __init__(
        self,
        vectors: tuple[np.ndarray, np.ndarray],
        train: TrainingSet | None,
        rating_weight: float,
    ):
        self.vectors = vectors
        self.train = train if rating_weight > 0 else None
        self.rating_weight = float(rating_weight)
        self._ratings: sparse.csr_matrix | None = None

    def scores(self, movie_index: np.ndarray) -> np.ndarray:
        """(n, movies) similarity of each movie in ``movie_index`` to every movie."""
        if self._ratings is None and self.train is not None:
            self._ratings = rating_rows(self.train)
        return combined_similarity(
            self.vectors, self._ratings, np.asarray(movie_index), self.rating_weight
        )


def rating_rows(train: TrainingSet) -> sparse.csr_matrix:
    """(movies, users) training ratings minus the rating scale's midpoint, each movie's
    row scaled to unit length: their dot products are the cosine of two movies' ratings.
    Unlike co-rating counts it tells "loved by the same people" from "watched by the
    same people" (sequels from films that were merely new at the same time)."""
    low, high = train.dataset.rating_scale
    centred = train.rating - (low + high) / 2.0
    matrix = sparse.csr_matrix(
        (centred, (train.movie_index, train.user_index)),
        shape=(train.movies.size, train.users.size),
    )
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix


def combined_similarity(
    vectors: tuple[np.ndarray, np.ndarray],
    ratings: sparse.csr_matrix | None,
    movie_index: np.ndarray,
    rating_weight: float,
) -> np.ndarray:
    """(n, movies) similarity: ``queries[i] . candidates[j]``, plus ``rating_weight`` times
    the ratings' cosine, each standardised per row (so the weight means the same on any
    data set).

    Args:
        vectors: ``(queries, candidates)``, each (movies, m), as
            :meth:`Retriever.similar_vectors` gives them.
        ratings: :func:`rating_rows` of the training set, or ``None`` to leave the
            ratings' cosine out.
        movie_index: The query movies' indices.
        rating_weight: Weight of the ratings' cosine; at 0 (or without ``ratings``)
            the plain, unstandardised dot products are returned.

    Returns:
        (len(movie_index), movies) float32 similarities.
    """
    queries, candidates = vectors
    scores = np.asarray(queries[movie_index] @ np.asarray(candidates).T, np.float32)
    if rating_weight <= 0 or ratings is None:
        return scores
    cosine = np.asarray((ratings[movie_index] @ ratings.T).todense(), np.float32)
    return _standardised(scores) + rating_weight * _standardised(cosine)


def _standardised(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=1, keepdims=True)
    return centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-12)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): cosine similarity by dot product."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Ranker(RecommenderModel):
    """Predicts the stars a user would give a movie."""

    kind = "ranking"

    @abstractmethod
    def predict(self, queries: QueryBatch, movie_index: np.ndarray) -> np.ndarray:
        """Float32 stars for the pairs (queries[i], movie_index[i])."""
