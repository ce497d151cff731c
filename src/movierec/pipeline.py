"""The two-stage recommender a person queries: retrieve, rank, explain with titles.

:class:`Recommender` ties a saved retrieval model and (optionally) a saved
ranking model together. The command line and the HTTP service both go through
it, so "recommend", "rank" and "similar" mean the same thing everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from movierec.data.vocab import OOV_INDEX
from movierec.errors import ModelError, MovierecError, UnknownIdError
from movierec.feedback import FeedbackSettings, level_stars
from movierec.models.artifacts import SavedModel, load_model, stage_mismatch
from movierec.models.base import MovieSimilarity, QueryBatch
from movierec.ranking.blend import DEFAULT_STAR_WEIGHT, blend_scores
from movierec.retrieval.index import CandidateIndex, make_index
from movierec.retrieval.model_index import candidate_matrix, load_model_index
from movierec.retrieval.topk import top_k

RETRIEVAL_DIR = "retrieval"
RANKING_DIR = "ranking"


#: How many of the user's ratings an explained recommendation names at most.
MAX_REASONS = 3
#: :class:`MovieResult` fields an answer carries only when it was asked for them.
OPTIONAL_FIELDS = ("because", "co_raters", "shared_genres")


@dataclass
class Reason:
    """One of the user's own ratings behind a recommendation ("because you rated ...")."""

    movie_id: str
    title: str
    #: The user's stars for it.
    rating: float
    #: How much the recommendation's score (what the list is ordered by) falls when this
    #: rating is left out of the history: always above 0.
    contribution: float


@dataclass
class MovieResult:
    """One movie in an answer, with what the models said about it."""

    movie_id: str
    title: str
    year: int | None
    genres: list[str]
    score: float | None = None
    predicted_rating: float | None = None
    #: What a recommendation list is ordered by: retrieval score + weight x predicted stars.
    blended: float | None = None
    #: With ``explain``: up to :data:`MAX_REASONS` of the user's ratings that raised this
    #: recommendation's score most, largest first (empty when none raised it).
    because: list[Reason] | None = None
    #: In ``similar``: users who rated both movies in training, and the genres they share.
    co_raters: int | None = None
    shared_genres: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, as the JSON answers carry it; ``because``, ``co_raters``
        and ``shared_genres`` only when set (answers that were asked for them)."""
        fields = asdict(self)
        for name in OPTIONAL_FIELDS:
            if fields[name] is None:
                del fields[name]
        return fields


@dataclass
class Recommendations:
    """A recommendation list, best first, and how long each stage took (milliseconds:
    ``retrieval``, ``ranking``, ``total``)."""

    items: list[MovieResult]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Recommender:
    """Retrieval (+ ranking) over a catalogue, addressed by raw user and movie ids.

    Retrieval goes through a :class:`CandidateIndex`: exact brute force unless an
    approximate one is given (``load`` picks up ``retrieval/index/`` when present).
    """

    def __init__(
        self,
        retrieval: SavedModel,
        ranking: SavedModel | None = None,
        num_candidates: int = 200,
        star_weight: float = DEFAULT_STAR_WEIGHT,
        index: CandidateIndex | None = None,
        feedback: FeedbackSettings | None = None,
    ):
        self.retrieval = retrieval
        self.ranking = ranking
        self.num_candidates = num_candidates
        self.star_weight = star_weight
        #: What "watched" and "not interested" weigh: as the models were trained with.
        self.feedback = feedback or FeedbackSettings.from_manifest(retrieval.manifest)
        scale = retrieval.manifest.get("rating_scale") or (1.0, 5.0)
        self.rating_scale = (float(scale[0]), float(scale[1]))
        train = retrieval.train
        self._candidates = candidate_matrix(retrieval)
        if index is not None and (index.size, index.dim) != self._candidates.shape:
            raise ModelError(
                f"a {index.name} index of {index.size} x {index.dim} does not fit "
                f"{self._candidates.shape[0]} x {self._candidates.shape[1]} candidate embeddings"
            )
        self.index = index if index is not None else make_index().build(self._candidates)
        self._histories = train.histories()
        catalogue = train.dataset.movies.set_index("movie_id", drop=False)
        self.catalogue: pd.DataFrame = catalogue
        # Title, year and genres by movie id: a pandas row lookup per movie is too slow
        # for a served answer.
        rows = catalogue[["title", "year", "genres"]].itertuples(name=None)  # id first
        self._movies: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
            str(movie): (str(title), None if pd.isna(year) else int(year), tuple(genres))
            for movie, title, year, genres in rows
        }
        self._popular: np.ndarray | None = None
        self._similarity: MovieSimilarity | None = None  # built on the first `similar`
        self._by_movie: tuple[np.ndarray, np.ndarray] | None = None  # raters, by movie
        # Retrieval's movie index -> the ranking model's (their vocabularies may differ).
        self._ranking_movie: np.ndarray | None = None
        if ranking is not None:
            ids = train.movies.ids
            self._ranking_movie = np.concatenate([[OOV_INDEX], ranking.train.movies.lookup(ids)])

    @classmethod
    def load(cls, models_dir: str | Path, num_candidates: int = 200) -> Recommender:
        """Load ``models_dir/retrieval`` and, when present, ``models_dir/ranking``.

        Nothing process-wide changes; a server tunes its process itself
        (:func:`movierec.serving.process.tune_process_for_serving`).
        """
        models_dir = Path(models_dir)
        if not (models_dir / RETRIEVAL_DIR).is_dir():
            raise ModelError(
                f"no retrieval model under {models_dir}; train one with `movierec train`"
            )
        retrieval = load_model(models_dir / RETRIEVAL_DIR, lazy=True)
        index = load_model_index(models_dir / RETRIEVAL_DIR, candidate_matrix(retrieval))
        ranking_dir = models_dir / RANKING_DIR
        ranking = load_model(ranking_dir, lazy=True) if ranking_dir.is_dir() else None
        if ranking is not None:
            differ = stage_mismatch(retrieval.manifest, ranking.manifest)
            if differ:
                raise ModelError(
                    f"{models_dir}: the retrieval and ranking models were trained on different "
                    f"data or splits ({differ}); train both together (`movierec train all "
                    f"--models {models_dir}` with one --data/--split/--seed), or keep each "
                    "pair in its own --models directory"
                )
        return cls(retrieval, ranking, num_candidates, index=index)

    # -- lookups -----------------------------------------------------------------

    def knows_user(self, user_id: str) -> bool:
        """Whether the retrieval model saw this user in training."""
        return str(user_id) in self.retrieval.train.users

    def movie(self, movie_id: str) -> MovieResult:
        """Title, year and genres of a catalogue movie; raises :class:`UnknownIdError`."""
        movie_id = str(movie_id)
        if movie_id not in self._movies:
            raise UnknownIdError("movie", movie_id)
        title, year, genres = self._movies[movie_id]
        return MovieResult(movie_id=movie_id, title=title, year=year, genres=list(genres))

    def search(self, query: str, limit: int = 20, *, offset: int = 0) -> list[MovieResult]:
        """Movies whose title contains every word of ``query`` (case-insensitive), in
        catalogue order: ``limit`` of them from position ``offset``."""
        _check_offset(offset)
        words = query.lower().split()
        titles = self.catalogue["title"].str.lower()
        mask = np.ones(len(titles), dtype=bool)
        for word in words:
            mask &= titles.str.contains(word, regex=False).to_numpy()
        return [self.movie(m) for m in self.catalogue.index[mask][offset : offset + limit]]

    def history(self, user_id: str | None) -> list[str]:
        """Movie ids the user rated in training (empty for unknown users)."""
        if user_id is None:
            return []
        train = self.retrieval.train
        index = train.users.index(user_id)
        return [train.movies.known_id(int(m)) for m in self._histories[index]] if index else []

    def training_ratings(self, user_id: str, limit: int | None = None) -> list[MovieResult]:
        """The movies a user rated in training with their stars (in ``predicted_rating``),
        best rated first (empty for unknown users)."""
        train = self.retrieval.train
        index = train.users.index(user_id)
        if not index or index >= train.by_user.num_users:
            return []
        movies, stars = train.by_user.of(index)
        order = np.argsort(-stars, kind="stable")[:limit]
        results = []
        for i in order:
            result = self.movie(train.movies.known_id(int(movies[i])))
            result.predicted_rating = float(stars[i])
            results.append(result)
        return results

    def popular(
        self, k: int = 10, *, offset: int = 0, exclude: Iterable[str] = ()
    ) -> list[MovieResult]:
        """The ``k`` movies rated most often in training: something to rate at once.

        Args:
            k: How many movies.
            offset: How many of the list (after ``exclude``) to skip: the next page.
            exclude: Movie ids to leave out (unknown ones raise :class:`UnknownIdError`).
        """
        _check_offset(offset)
        if self._popular is None:
            train = self.retrieval.train
            counts = np.bincount(train.movie_index, minlength=train.movies.size)
            counts[OOV_INDEX] = -1
            self._popular = np.argsort(-counts, kind="stable")[:-1]  # the OOV row sorts last
        order = self._popular
        left_out = self._movie_indices(exclude)
        if len(left_out):
            order = order[~np.isin(order, left_out)]
        top = order[offset : offset + k]
        return [self.movie(self.retrieval.train.movies.known_id(int(i))) for i in top]

    # -- the two stages ----------------------------------------------------------

    def recommend(
        self,
        user_id: str | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        extra_ratings: Sequence[tuple[str, float]] = (),
        *,
        offset: int = 0,
        exclude: Iterable[str] = (),
        watched: Iterable[str] = (),
        not_interested: Iterable[str] = (),
        explain: bool = False,
    ) -> Recommendations:
        """Top ``k`` movies for a user (known id, rating history, or both), from ``offset``.

        Retrieval finds candidates in blocks of ``num_candidates``; with a ranking
        model each block is re-ordered by the blend of retrieval score and predicted
        stars; without one the retrieval order is kept. Block ``b`` holds the
        retrieval ranks ``b * num_candidates`` to ``(b + 1) * num_candidates - 1``
        whatever the page asked for, so the list is one fixed order and its pages
        (``offset`` 0, k, 2k, ...) never repeat or skip a movie.

        Args:
            user_id: A known user's raw id, or ``None`` for someone described by
                ``extra_ratings`` alone.
            k: How many movies to return (fewer when the catalogue runs out).
            exclude_seen: Leave out the movies in the user's history (training
                ratings plus ``extra_ratings``).
            extra_ratings: ``(movie_id, stars)`` pairs added to the history; a movie
                rated in training takes the new stars.
            offset: How many movies of the list to skip (0: the first page).
            exclude: Movie ids never to return (what a site already showed, what is
                out of stock); the list is the one without them.
            watched: Movies the user watched without rating: never returned, and each
                stands in for a rating of ``feedback_watched_level`` (unless rated).
            not_interested: Movies the user does not want: never returned, and their
                most similar movies are pushed down (:class:`~movierec.feedback.FeedbackSettings`).
            explain: Also set ``because`` on every movie: the user's ratings whose
                removal from the history lowers its score most (:meth:`explain`); adds
                an ``explain`` timing.

        Returns:
            :class:`Recommendations` with ``score`` set on every movie, and
            ``predicted_rating`` and ``blended`` when a ranking model is loaded.

        Raises:
            UnknownIdError: An unknown ``user_id`` without ratings or watched movies,
                or an unknown movie id anywhere.
            MovierecError: A negative ``offset``.
        """
        started = time.perf_counter()
        _check_offset(offset)
        watched, not_interested = list(watched), list(not_interested)
        never = self._movie_indices([*exclude, *watched, *not_interested])
        extra = list(extra_ratings)
        level = self.feedback.feedback_watched_level
        if level is not None and watched:  # stars say more: a rating wins, old or new
            rated = {str(m) for m, _ in extra} | set(self.history(user_id))
            stars = level_stars(level, self.rating_scale)
            vocabulary = self.retrieval.train.movies
            extra += [
                (m, stars)
                for m in dict.fromkeys(map(str, watched))
                if m not in rated and m in vocabulary
            ]
        query = self._query(self.retrieval, user_id, extra)
        query_vector = self._query_vector(query, extra)
        seen = query.histories[0] if exclude_seen else np.zeros(0, np.int64)
        pushed = self._pushed_down(not_interested)
        reorder = self.ranking is not None or len(pushed) > 0
        block = max(1, self.num_candidates)
        wanted = offset + k
        # never more than the catalogue: a far offset asks for nothing that is not there
        depth = min(-(-wanted // block) * block if reorder else wanted, self.index.size)
        scores, indices = self.index.search(query_vector, depth, [np.union1d(seen, never)])
        keep = indices[0] >= 0
        indices, scores = indices[0][keep], scores[0][keep]
        retrieved = time.perf_counter()
        predicted = final = None
        key = scores
        if self._ranking_movie is not None and len(indices):
            predicted = self._predict(user_id, self._ranking_movie[indices], extra)
            final = key = blend_scores(scores, predicted, self.star_weight)
        if reorder:
            demoted = np.isin(indices, pushed)
            order = np.concatenate(
                [
                    start
                    + _block_order(
                        key[start : start + block],
                        demoted[start : start + block],
                        self.feedback.feedback_push,
                    )
                    for start in range(0, len(indices), block)
                ]
                or [np.zeros(0, np.int64)]
            )[offset:wanted]
        else:
            order = np.arange(offset, min(wanted, len(indices)))
        ranked = time.perf_counter()
        items = []
        for position in order:
            result = self.movie(self.retrieval.train.movies.known_id(int(indices[position])))
            result.score = float(scores[position])
            if predicted is not None and final is not None:
                result.predicted_rating = float(predicted[position])
                result.blended = float(final[position])
            items.append(result)
        timings = {
            "retrieval": (retrieved - started) * 1000,
            "ranking": (ranked - retrieved) * 1000,
        }
        if explain:
            explained = time.perf_counter()
            chosen = indices[order]
            reasons = self.explain(user_id, chosen, extra, query=query)
            for result, because in zip(items, reasons, strict=True):
                result.because = because
            timings["explain"] = (time.perf_counter() - explained) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Recommendations(items, timings)

    def explain(
        self,
        user_id: str | None,
        movies: np.ndarray,
        extra_ratings: Sequence[tuple[str, float]] = (),
        *,
        query: QueryBatch | None = None,
    ) -> list[list[Reason]]:
        """For each movie, the user's ratings that raised its score most (leave one out).

        The score is what a recommendation list is ordered by: the retrieval score plus
        ``star_weight`` times the predicted stars (the retrieval score alone without a
        ranking model). A rating's contribution is how much that score falls when the
        rating is taken out of the history and both models answer again: the retrieval
        model through :meth:`~movierec.models.base.Retriever.leave_one_out_embeddings`
        (one query per rating, exact), the ranker by predicting each movie for each of
        those queries. Only ratings whose removal lowers the score are named.

        Args:
            user_id: As in :meth:`recommend`.
            movies: The retrieval model's indices of the movies to explain.
            extra_ratings: As in :meth:`recommend`.
            query: The retrieval query already built for these arguments.

        Returns:
            One list per movie of at most :data:`MAX_REASONS` reasons, largest first.
        """
        movies = np.asarray(movies, np.int64)
        if query is None:
            query = self._query(self.retrieval, user_id, extra_ratings)
        ids = self.retrieval.train.movies
        history = [ids.known_id(int(m)) for m in query.histories[0]]
        stars = dict(zip(history, (float(r) for r in query.history_ratings[0]), strict=True))
        drop: dict[str, np.ndarray] = {}
        if len(history) and len(movies):
            queries = self.retrieval.retriever.leave_one_out_embeddings(query)
            scores = queries @ self._candidates[movies].T  # (1 + n, k)
            drop = dict(zip(history, scores[0] - scores[1:], strict=True))
        if self.ranking is not None and self._ranking_movie is not None and len(movies):
            ranked = self._query(self.ranking, user_id, extra_ratings)
            rated = [self.ranking.train.movies.known_id(int(m)) for m in ranked.histories[0]]
            for movie, given in zip(rated, ranked.history_ratings[0], strict=True):
                stars.setdefault(movie, float(given))
            if rated:
                targets = self._ranking_movie[movies]
                without = ranked.leave_one_out()
                rows = np.repeat(np.arange(len(without)), len(targets))
                predicted = self.ranking.ranker.predict(
                    without.take(rows), np.tile(targets, len(without))
                ).reshape(len(without), len(targets))
                lower = self.star_weight * (predicted[0] - predicted[1:])
                for movie, change in zip(rated, lower, strict=True):
                    drop[movie] = drop.get(movie, 0.0) + change
        reasons: list[list[Reason]] = [[] for _ in movies]
        if not drop:
            return reasons
        rated_ids = list(drop)
        table = np.stack([drop[m] for m in rated_ids])  # (rated, k)
        for column, because in enumerate(reasons):
            best = np.argsort(-table[:, column], kind="stable")[:MAX_REASONS]
            for row in best:
                if not table[row, column] > 0:
                    break
                movie = rated_ids[row]
                because.append(
                    Reason(movie, self._movies[movie][0], stars[movie], float(table[row, column]))
                )
        return reasons

    def rank(
        self,
        user_id: str | None,
        movie_ids: Iterable[str],
        extra_ratings: Sequence[tuple[str, float]] = (),
    ) -> list[MovieResult]:
        """Predicted stars for the given movies, best first."""
        if self.ranking is None:
            raise ModelError("no ranking model loaded; train one with `movierec train ranking`")
        movie_ids = [str(m) for m in movie_ids]
        results = [self.movie(m) for m in movie_ids]
        movies = self.ranking.train.movies.lookup(movie_ids)
        predicted = self._predict(user_id, movies, extra_ratings)
        for result, stars in zip(results, predicted, strict=True):
            result.predicted_rating = float(stars)
        return sorted(results, key=lambda r: -(r.predicted_rating or 0.0))

    def similarity_meaning(self) -> str:
        """What :meth:`similar`'s ``score`` means for the loaded retrieval model, in a
        line (:func:`similarity_meaning` of its saved settings)."""
        return similarity_meaning(self.retrieval.manifest.get("settings", {}))

    def similar(
        self, movie_id: str, k: int = 10, *, offset: int = 0, exclude: Iterable[str] = ()
    ) -> list[MovieResult]:
        """Movies most like this one, by the retrieval model's ``similar_scores``; each
        result's ``score`` is that similarity (see :meth:`similarity_meaning`), and
        ``co_raters`` and ``shared_genres`` say what the two movies share: how many users
        rated both in training, and their genres in common.

        Args:
            movie_id: The movie to match.
            k: How many movies.
            offset: How many of the list (after ``exclude``) to skip: the next page.
            exclude: Movie ids to leave out (unknown ones raise :class:`UnknownIdError`).
        """
        _check_offset(offset)
        movie_id = str(movie_id)
        index = self.retrieval.train.movies.index(movie_id)
        if index == OOV_INDEX:
            raise UnknownIdError("movie", movie_id)
        left_out = np.concatenate([[index], self._movie_indices(exclude)])
        scores = self._similarities(index)
        if offset >= len(scores):
            return []
        depth = min(offset + k, len(scores))
        top_scores, top_indices = top_k(scores[None, :], depth, [left_out])
        results = []
        raters = self._raters(index)
        genres = set(self._movies[movie_id][2])
        for score, i in zip(top_scores[0][offset:], top_indices[0][offset:], strict=True):
            if i < 0:
                continue
            result = self.movie(self.retrieval.train.movies.known_id(int(i)))
            result.score = float(score)
            result.co_raters = int(np.intersect1d(raters, self._raters(int(i))).size)
            result.shared_genres = [g for g in result.genres if g in genres]
            results.append(result)
        return results

    def _similarities(self, index: int) -> np.ndarray:
        """Every catalogue movie's similarity to the movie at ``index``."""
        if self.retrieval.similar is not None:  # exported at save: no network needed
            if self._similarity is None:
                settings = self.retrieval.manifest.get("settings", {})
                weight = float(settings.get("similar_rating_weight", 0))
                self._similarity = MovieSimilarity(
                    self.retrieval.similar, self.retrieval.train, weight
                )
            return self._similarity.scores(np.array([index]))[0]
        return self.retrieval.retriever.similar_scores(np.array([index]))[0]

    def _pushed_down(self, not_interested: Sequence[str]) -> np.ndarray:
        """Movie indices that ``not_interested`` push down: the ``feedback_similar``
        most similar movies of each (none when the settings turn it off)."""
        n = self.feedback.feedback_similar
        if not not_interested or n == 0 or self.feedback.feedback_push == 0:
            return np.zeros(0, np.int64)
        found = []
        for index in self._movie_indices(not_interested):
            _, top = top_k(self._similarities(int(index))[None, :], n, [np.array([index])])
            found.append(top[0][top[0] >= 0])
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def _movie_indices(self, movie_ids: Iterable[str]) -> np.ndarray:
        """Retrieval vocabulary indices of catalogue movies (a catalogue movie the model
        never saw has none and is skipped); an id outside the catalogue raises
        :class:`UnknownIdError`."""
        ids = [str(m) for m in movie_ids]
        for movie in ids:
            if movie not in self._movies:
                raise UnknownIdError("movie", movie)
        found = self.retrieval.train.movies.lookup(ids) if ids else np.zeros(0, np.int64)
        found = np.asarray(found, np.int64)
        return np.unique(found[found != OOV_INDEX])

    def _raters(self, index: int) -> np.ndarray:
        """Sorted indices of the users who rated movie ``index`` in training (the ratings
        are grouped by movie on first use)."""
        if self._by_movie is None:
            train = self.retrieval.train
            order = np.lexsort((train.user_index, train.movie_index))
            offsets = np.searchsorted(train.movie_index[order], np.arange(train.movies.size + 1))
            self._by_movie = (np.asarray(train.user_index)[order], offsets)
        users, offsets = self._by_movie
        return users[offsets[index] : offsets[index + 1]]

    # -- helpers -----------------------------------------------------------------

    def _query(
        self,
        saved: SavedModel,
        user_id: str | None,
        extra_ratings: Sequence[tuple[str, float]],
    ) -> QueryBatch:
        """One query: the user's index and training history plus any new ratings."""
        train = saved.train
        user_index = OOV_INDEX
        if user_id is not None:
            user_index = train.users.index(user_id)
            if user_index == OOV_INDEX and not extra_ratings:
                raise UnknownIdError("user", user_id)
        base = QueryBatch.from_training(train, np.array([user_index]))
        if not extra_ratings:
            return base
        extra_ids = [str(movie) for movie, _ in extra_ratings]
        for movie in extra_ids:
            if movie not in train.movies:
                raise UnknownIdError("movie", movie)
        extra_movies = train.movies.lookup(extra_ids)
        extra_stars = np.array([float(r) for _, r in extra_ratings], dtype=np.float32)
        # A newer rating of the same movie replaces the training one.
        keep = ~np.isin(base.histories[0], extra_movies)
        movies = np.concatenate([base.histories[0][keep], extra_movies]).astype(np.int32)
        stars = np.concatenate([base.history_ratings[0][keep], extra_stars]).astype(np.float32)
        return QueryBatch(np.array([user_index]), [movies], [stars])

    def _query_vector(
        self, query: QueryBatch, extra_ratings: Sequence[tuple[str, float]]
    ) -> np.ndarray:
        """(1, d) query embedding: the exported row for a known user as trained, else the
        retriever's own (which reads the network on first use)."""
        table = self.retrieval.user_queries
        user = int(query.user_index[0])
        if table is not None and not extra_ratings and 0 < user < len(table):
            return np.array(table[user : user + 1])
        return self.retrieval.retriever.query_embeddings(query)

    def _predict(
        self,
        user_id: str | None,
        movies: np.ndarray,
        extra_ratings: Sequence[tuple[str, float]],
    ) -> np.ndarray:
        """Predicted stars of ``movies`` (the ranking model's movie indices) for one user."""
        assert self.ranking is not None
        table = self.ranking.user_stars
        if table is not None and not extra_ratings and user_id is not None:
            user = self.ranking.train.users.index(user_id)
            if user != OOV_INDEX:
                return np.asarray(table[user], dtype=np.float32)[np.asarray(movies, np.int64)]
        query = self._query(self.ranking, user_id, extra_ratings)
        rows = np.zeros(len(movies), dtype=np.int64)
        return self.ranking.ranker.predict(query.take(rows), movies)


def _check_offset(offset: int) -> None:
    """A list's start position: a whole number, 0 or more."""
    if isinstance(offset, bool) or not isinstance(offset, int | np.integer) or offset < 0:
        raise MovierecError(f"offset must be a whole number, 0 or more, got {offset!r}")


def _block_order(key: np.ndarray, demoted: np.ndarray, push: float) -> np.ndarray:
    """Positions of one block of candidates, best first by ``key``; the ``demoted``
    ones lose ``push`` standard deviations of the block's keys (ties keep retrieval
    order)."""
    if demoted.any() and push > 0:
        spread = float(np.std(key)) if len(key) > 1 else 0.0
        key = key - demoted * push * (spread if spread > 0 else 1.0)
    return np.argsort(-key, kind="stable")


def similarity_meaning(settings: Mapping[str, Any]) -> str:
    """What a retrieval model's ``similar`` scores are, from its settings, in one line.

    With a ``similar_rating_weight`` (the two-tower's is 0.5) the score is a sum of
    standardised scores (:func:`~movierec.models.base.combined_similarity`): no fixed
    bound. Without one it is the product of the model's similar vectors: the
    two-tower's EASE row plus its embeddings' cosine, each divided by its spread, when
    it has an item-item path (``item_item_rank``); else the embeddings' cosine.

    Args:
        settings: The retrieval model's settings, as its manifest records them.

    Returns:
        E.g. ``"score = cosine of the two movies' embeddings (-1 to 1, higher is more
        alike)"``.
    """
    weight = float(settings.get("similar_rating_weight") or 0.0)
    if weight > 0:
        return (
            f"score = the model's movie similarity + {weight:g} x the cosine of the two "
            "movies' ratings, each in standard deviations from this movie's mean over the "
            "catalogue (0 = a typical movie; higher is more alike; no fixed bound)"
        )
    if int(settings.get("item_item_rank") or 0) > 0:
        return (
            "score = the EASE item-item score + the embeddings' cosine, each divided by its "
            "spread over the catalogue (higher is more alike; no fixed bound)"
        )
    return "score = cosine of the two movies' embeddings (-1 to 1, higher is more alike)"
