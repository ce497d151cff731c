"""movierec as a library: load data, split it, train, evaluate, save, load and query.

Everything here is re-exported from :mod:`movierec`, and answers are pandas
DataFrames (one row per movie, best first)::

    import movierec
    data = movierec.load_data("ml-100k")
    split = movierec.split(data, seed=42)
    rec = movierec.train(split)
    print(rec.recommend("42", k=10))

Heavy modules (Keras, JAX) are imported only when a model is trained or a saved
network is needed, so ``import movierec`` and answering from a saved model stay quick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from movierec.progress import reports_progress

if TYPE_CHECKING:
    from movierec.data.schema import Dataset
    from movierec.data.training import TrainingSet
    from movierec.models.artifacts import SavedModel
    from movierec.models.base import RecommenderModel
    from movierec.pipeline import MovieResult
    from movierec.pipeline import Recommender as Engine

Kind = Literal["retrieval", "ranking"]

#: Columns of every answer, in order (absent ones are left out).
ANSWER_COLUMNS = (
    "movie_id", "title", "year", "genres", "blended", "score", "predicted_rating", "because",
    "co_raters", "shared_genres",
)  # fmt: skip


@dataclass
class DataSplit:
    """A data set and its train/test ratings, as :func:`split` makes them."""

    dataset: Dataset
    train: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainedModel:
    """One fitted model, the training set it saw, and its test metrics (empty if no test)."""

    kind: str
    name: str
    model: RecommenderModel
    train_set: TrainingSet
    metrics: dict[str, Any]
    seconds: float
    split_info: dict[str, Any] = field(default_factory=dict)
    data_source: str | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting the model was trained with."""
        return dict(self.model.settings)

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory`` (atomically: all files or none)."""
        from movierec.models.artifacts import save_model

        return save_model(
            self.model,
            self.train_set,
            directory,
            split=self.split_info,
            metrics=self.metrics,
            extra={
                "data_source": self.data_source,
                "training_seconds": round(self.seconds, 2),
                **self._provenance(),
            },
        )

    def _saved(self) -> SavedModel:
        from movierec.models.artifacts import SavedModel

        manifest = {
            "kind": self.kind,
            "model": self.name,
            "settings": self.settings,
            "metrics": self.metrics,
            "split": self.split_info,
            "data": self.train_set.describe(),
            "data_source": self.data_source,
            "training_seconds": round(self.seconds, 2),
            **self._provenance(),
        }
        return SavedModel(self.model, self.train_set, manifest)

    def _provenance(self) -> dict[str, Any]:
        """What a refitted model's manifest says of its metrics."""
        from movierec.data.splits import ALL_RATINGS
        from movierec.workflow import METRICS_FROM_HOLDOUT

        refitted = self.split_info.get("method") == ALL_RATINGS and "holdout" in self.split_info
        return {"metrics_from": METRICS_FROM_HOLDOUT} if refitted else {}


def load_data(source: str | Path = "ml-100k") -> Dataset:
    """Load ``"ml-100k"`` (fetched once into the data home) or a directory of MovieLens files.

    Directories may hold GroupLens ml-100k, ml-1m or ml-latest files, RecBole atomic
    files, or the Parquet shards of ``movierec data synth``.
    """
    from movierec.data.loading import load_dataset

    return load_dataset(source)


def split(
    data: Dataset,
    method: Literal["random", "temporal", "leave-last-n", "hash"] = "random",
    *,
    seed: int = 42,
    test_fraction: float = 0.2,
    leave_out: int = 1,
) -> DataSplit:
    """Split ``data``'s ratings into train and test (80/20 at random by default).

    Args:
        data: The data set whose ratings are split.
        method: ``"random"`` (distinct user-movie pairs), ``"temporal"`` (one time
            cutoff), ``"leave-last-n"`` (each user's last ratings) or ``"hash"``
            (per-rating hash, as streamed training splits); see
            :mod:`movierec.data.splits`.
        seed: Seed of the ``random`` and ``hash`` methods (the others ignore it).
        test_fraction: Share of ratings (or pairs) that go to test; ignored by
            ``leave-last-n``.
        leave_out: How many of each user's last ratings ``leave-last-n`` holds out.

    Returns:
        A :class:`DataSplit` whose ``info`` records the method, its parameters and
        the resulting counts.

    Raises:
        MovierecError: An unknown method, a fraction outside (0, 1) or a
            ``leave_out`` that is not a positive integer.
    """
    from movierec.data.splits import make_split

    parts = make_split(
        data.ratings, method=method, seed=seed, test_fraction=test_fraction, n=leave_out
    )
    return DataSplit(data, parts.train, parts.test, dict(parts.info))


def default_settings(kind: Kind, name: str | None = None) -> dict[str, Any]:
    """Every setting of a model (``name`` defaults to the kind's default model)."""
    from movierec.models.registry import DEFAULT_RANKER, DEFAULT_RETRIEVER, model_class

    name = name or (DEFAULT_RETRIEVER if kind == "retrieval" else DEFAULT_RANKER)
    return model_class(kind, name).default_settings()


@reports_progress
def train_model(
    kind: Kind,
    data: Dataset | DataSplit,
    name: str | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    seed: int = 42,
    verbose: int = 1,
    refit: bool = True,
) -> TrainedModel:
    """Fit one model: ``kind`` "retrieval" (default "two-tower") or "ranking" ("dcn").

    Given a :class:`DataSplit` it trains on the train part and reports test metrics,
    then (``refit=True``, the default) fits again on every rating, so the model that
    answers knows everything its users said while its metrics stay held-out ones;
    ``refit=False`` keeps the model of the train part (what :func:`evaluate` scores).
    Given a :class:`Dataset` it trains on every rating. Progress (one labelled line per
    epoch) goes to stderr unless ``verbose=0``; see :func:`train`.

    Args:
        kind: ``"retrieval"`` or ``"ranking"``.
        data: A :class:`DataSplit` (train, then test) or a whole :class:`Dataset`.
        name: Registry name of the model; ``None`` picks the kind's default.
        settings: Model settings overriding the defaults (see :func:`default_settings`).
        seed: The model's seed, unless ``settings`` gives one.
        verbose: 1 (the default) shows progress, 0 trains silently.
        refit: With a :class:`DataSplit`, refit on all its ratings after evaluating.

    Returns:
        A :class:`TrainedModel`, its ``metrics`` empty when ``data`` had no test part.

    Raises:
        MovierecError: An unknown kind, name or setting, or a split nothing could be
            measured on (too few ratings, no test rating of a known user and movie).
    """
    from movierec.data.loading import LOADED_FROM
    from movierec.data.splits import ALL_RATINGS, check_evaluable
    from movierec.data.training import TrainingSet
    from movierec.models.registry import DEFAULT_RANKER, DEFAULT_RETRIEVER
    from movierec.workflow import refit_split_info
    from movierec.workflow import train_model as fit

    name = name or (DEFAULT_RETRIEVER if kind == "retrieval" else DEFAULT_RANKER)
    every = None
    if isinstance(data, DataSplit):
        check_evaluable(data.dataset.ratings, data, f"data set {data.dataset.name}")  # no nan
        dataset, train, test, info = data.dataset, data.train, data.test, data.info
        if refit:
            every = pd.concat([data.train, data.test], ignore_index=True)
    else:
        dataset, train, test = data, data.ratings, None
        info = {"method": ALL_RATINGS, "ratings": len(data.ratings)}
    result = fit(
        kind,
        name,
        dataset,
        train,
        test,
        settings={"seed": seed, **(settings or {})},
        split_info=info,
        verbose=verbose,
        refit_ratings=every,
    )
    assert isinstance(result.train, TrainingSet)  # the API trains in memory
    return TrainedModel(
        kind,
        name,
        result.model,
        result.train,
        result.metrics,
        result.seconds,
        refit_split_info(info, len(every)) if every is not None else info,
        data_source=dataset.source.get(LOADED_FROM),
    )


@reports_progress
def train(
    data: Dataset | DataSplit,
    *,
    retriever: str = "two-tower",
    ranker: str | None = "dcn",
    retrieval_settings: Mapping[str, Any] | None = None,
    ranking_settings: Mapping[str, Any] | None = None,
    seed: int = 42,
    verbose: int = 1,
    refit: bool = True,
) -> Recommender:
    """Train a retriever and (unless ``ranker=None``) a ranker; a ready :class:`Recommender`.

    Both models train on the same ``data`` with the same ``seed``, as the two stages
    of one recommender must.

    Training takes from seconds to minutes, so by default it says what it is doing:
    labelled lines such as ``retrieval 'two-tower': epoch 3/10, loss 5.3127 (...),
    12.4 s`` on stderr, through the ``movierec`` logger. They show for this call only
    and only when nothing else routes that logger (an application that configures the
    ``movierec`` logger, or the root logger at INFO, gets them there instead);
    ``verbose=0`` silences them.

    Args:
        data: A :class:`DataSplit` (test metrics are then recorded) or a whole
            :class:`Dataset`.
        retriever: Registry name of the retrieval model.
        ranker: Registry name of the ranking model; ``None`` for retrieval alone.
        retrieval_settings: Settings overriding the retriever's defaults.
        ranking_settings: Settings overriding the ranker's defaults.
        seed: Seed of both models, unless their settings give one.
        verbose: 1 (the default) shows progress on stderr, 0 trains silently.
        refit: With a :class:`DataSplit`, evaluate on it, then refit both models on
            all its ratings (the default: answers never repeat what users rated);
            ``False`` keeps the train part's models, which :func:`evaluate` can score.

    Returns:
        A :class:`Recommender` over the freshly trained models.
    """
    retrieval = train_model(
        "retrieval", data, retriever, settings=retrieval_settings, seed=seed, verbose=verbose,
        refit=refit,
    )
    ranking = None
    if ranker is not None:
        ranking = train_model(
            "ranking", data, ranker, settings=ranking_settings, seed=seed, verbose=verbose,
            refit=refit,
        )
    return Recommender.from_models(retrieval, ranking)


def evaluate(
    model: Recommender | TrainedModel,
    data: DataSplit,
    *,
    k: Sequence[int] = (10, 100),
    exclude_seen: bool = True,
    min_rating: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Test metrics by kind: RMSE/MAE for ranking; recall, NDCG, ... at each ``k`` for retrieval.

    ``data`` must be the split the model was trained on (the test ratings are held out).

    Args:
        model: A :class:`Recommender` (each of its models is evaluated) or one
            :class:`TrainedModel`.
        data: The split the model was trained on; its ``test`` part is scored.
        k: List lengths at which retrieval metrics are reported.
        exclude_seen: Leave out movies each user rated in training before cutting
            the retrieval lists (ranking ignores this, ``k`` and ``min_rating``).
        min_rating: Count only test ratings of at least this many stars as relevant
            for retrieval; ``None`` counts every test rating.

    Returns:
        Metrics by kind (``"retrieval"``, ``"ranking"``), each a dict of name to value.
    """
    from movierec.data.splits import ALL_RATINGS
    from movierec.errors import ModelError
    from movierec.evaluation.evaluate import evaluate_ranker, evaluate_retriever
    from movierec.models.base import Ranker, Retriever

    if isinstance(model, TrainedModel):
        models = [(model.kind, model.model, model.train_set, model.split_info)]
    else:
        models = [
            (s.model.kind, s.model, s.train, s.manifest.get("split", {}))
            for s in model.engine_models()
        ]
    if any(info.get("method") == ALL_RATINGS for *_, info in models):
        raise ModelError(
            "this model was trained on every rating (refitted after its evaluation, or "
            "given a whole Dataset): the test ratings are in its training set; read the "
            "metrics measured before the refit in `.metrics`, or train with refit=False"
        )
    report: dict[str, dict[str, Any]] = {}
    for kind, fitted, train_set, _ in models:
        if isinstance(fitted, Ranker):
            report[kind] = evaluate_ranker(fitted, train_set, data.test)
        elif isinstance(fitted, Retriever):
            report[kind] = evaluate_retriever(
                fitted,
                train_set,
                data.test,
                ks=tuple(k),
                exclude_seen=exclude_seen,
                min_rating=min_rating,
            )
    return report


def load(models_dir: str | Path) -> Recommender:
    """Load what ``movierec train`` or :meth:`Recommender.save` wrote to ``models_dir``."""
    return Recommender.load(models_dir)


class Recommender:
    """Recommendations, predicted stars and look-alikes from trained models, as DataFrames.

    Every answer has one row per movie with ``movie_id``, ``title``, ``year`` and
    ``genres``, plus what the models said: ``score`` (retrieval score or similarity),
    ``predicted_rating`` (stars) and, for recommendations, ``blended``: the retrieval
    score plus the weighted predicted stars that the list is ordered by.
    """

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def load(cls, models_dir: str | Path) -> Recommender:
        """Load ``models_dir/retrieval`` and, when present, ``models_dir/ranking``."""
        from movierec.pipeline import Recommender as Engine

        return cls(Engine.load(models_dir))

    @classmethod
    def from_models(
        cls, retrieval: TrainedModel, ranking: TrainedModel | None = None
    ) -> Recommender:
        """A recommender over freshly trained models (see :func:`train_model`)."""
        from movierec.pipeline import Recommender as Engine

        if retrieval.kind != "retrieval" or (ranking is not None and ranking.kind != "ranking"):
            raise ValueError("from_models takes a retrieval model and, optionally, a ranking one")
        engine = Engine(retrieval._saved(), ranking._saved() if ranking else None)
        return cls(engine)

    def engine_models(self) -> list[SavedModel]:
        """The saved or trained models behind this recommender (retrieval first)."""
        return [m for m in (self.engine.retrieval, self.engine.ranking) if m is not None]

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Test metrics recorded when each model was trained, by kind."""
        return {
            m.manifest["kind"]: dict(m.manifest.get("metrics", {})) for m in self.engine_models()
        }

    def save(self, models_dir: str | Path) -> Path:
        """Write ``models_dir/retrieval`` (and ``ranking``), as ``movierec train`` does."""
        from movierec.models.artifacts import save_model

        models_dir = Path(models_dir)
        for saved in self.engine_models():
            manifest = saved.manifest
            save_model(
                saved.model,
                saved.train,
                models_dir / saved.model.kind,
                split=manifest.get("split", {}),
                metrics=manifest.get("metrics", {}),
                extra={
                    k: manifest[k]
                    for k in ("data_source", "training_seconds", "metrics_from")
                    if k in manifest
                },
            )
        return models_dir

    def recommend(
        self,
        user: str,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        offset: int = 0,
        exclude: Iterable[str] = (),
        watched: Iterable[str] = (),
        not_interested: Iterable[str] = (),
        explain: bool = False,
    ) -> pd.DataFrame:
        """The ``k`` best movies for a known user, movies they rated left out by default.

        Args:
            user: A user id the model was trained with.
            k: How many movies to return.
            exclude_seen: Leave out the movies the user rated.
            offset: How many movies of the list to skip: ``offset=k`` is the second
                page; pages of one list never repeat or skip a movie.
            exclude: Movie ids never to return (already shown, out of stock, ...).
            watched: Movies the user watched without rating them: never returned, and
                a weak positive (:class:`~movierec.feedback.FeedbackSettings`).
            not_interested: Movies the user does not want: never returned, and the
                movies most like them are pushed down the list.
            explain: Add a ``because`` column: for each movie, up to three of the
                user's ratings that raised its score most, as dicts of ``movie_id``,
                ``title``, ``rating`` (their stars) and ``contribution`` (how much the
                score falls without that rating); see the models page for how it is
                computed and what it costs.

        Raises:
            UnknownIdError: An unknown user or movie id.
            MovierecError: A negative ``offset``.
        """
        answer = self.engine.recommend(
            str(user),
            k=k,
            exclude_seen=exclude_seen,
            offset=offset,
            exclude=exclude,
            watched=watched,
            not_interested=not_interested,
            explain=explain,
        )
        return _frame(answer.items)

    def recommend_for_ratings(
        self,
        ratings: Mapping[str, float] | Iterable[tuple[str, float]],
        k: int = 10,
        *,
        user: str | None = None,
        exclude_seen: bool = True,
        offset: int = 0,
        exclude: Iterable[str] = (),
        watched: Iterable[str] = (),
        not_interested: Iterable[str] = (),
        explain: bool = False,
    ) -> pd.DataFrame:
        """The ``k`` best movies for someone described by ratings ``{movie_id: stars}``
        (added to a known ``user``'s history when given).

        Args:
            ratings: Movie id to stars, as a mapping or ``(movie_id, stars)`` pairs; a
                movie the user rated in training takes the new stars.
            k: How many movies to return.
            user: A known user id whose training history the ratings extend.
            exclude_seen: Leave out the movies in the (extended) history.
            offset: How many movies of the list to skip (the next page).
            exclude: Movie ids never to return.
            watched: Movies watched without a rating (see :meth:`recommend`).
            not_interested: Movies not wanted (see :meth:`recommend`).
            explain: Add the ``because`` column, as :meth:`recommend` does.

        Returns:
            One row per movie, best first (columns as in :data:`ANSWER_COLUMNS`).

        Raises:
            ValueError: Neither ratings nor a user were given.
            UnknownIdError: A movie id the model does not know, or an unknown
                ``user`` given without ratings.
        """
        pairs = _pairs(ratings)
        if not pairs and user is None:
            raise ValueError("recommend_for_ratings needs at least one rating (or a user)")
        answer = self.engine.recommend(
            user,
            k=k,
            exclude_seen=exclude_seen,
            extra_ratings=pairs,
            offset=offset,
            exclude=exclude,
            watched=watched,
            not_interested=not_interested,
            explain=explain,
        )
        return _frame(answer.items)

    def rank(
        self,
        user: str | None,
        movies: Iterable[str],
        *,
        ratings: Mapping[str, float] | Iterable[tuple[str, float]] = (),
    ) -> pd.DataFrame:
        """Predicted stars for ``movies`` (duplicates dropped), best first."""
        movie_ids = list(dict.fromkeys(str(m) for m in movies))
        return _frame(self.engine.rank(user, movie_ids, _pairs(ratings)))

    def similar(
        self, movie: str, k: int = 10, *, offset: int = 0, exclude: Iterable[str] = ()
    ) -> pd.DataFrame:
        """The ``k`` movies most like ``movie`` from ``offset`` (the next page), without
        ``exclude``; ``score`` is the retrieval model's similarity (for the two-tower, a
        sum of scores each standardised over the catalogue: unbounded, higher is more
        alike; see ``Retriever.similar_scores``), ``co_raters`` how many users rated both in
        training, ``shared_genres`` the genres the two have in common."""
        return _frame(self.engine.similar(str(movie), k=k, offset=offset, exclude=exclude))

    def search(self, query: str, limit: int = 20, *, offset: int = 0) -> pd.DataFrame:
        """Movies whose title contains every word of ``query`` (case-insensitive), in
        catalogue order from ``offset``."""
        return _frame(self.engine.search(query, limit=limit, offset=offset))

    def history(self, user: str) -> list[str]:
        """Movie ids the user rated in training."""
        return self.engine.history(str(user))

    def __repr__(self) -> str:
        parts = [f"{m.manifest['kind']}={m.manifest['model']!r}" for m in self.engine_models()]
        return f"movierec.Recommender({', '.join(parts)})"


def _pairs(ratings: Mapping[str, float] | Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    items = ratings.items() if isinstance(ratings, Mapping) else ratings
    return [(str(movie), float(stars)) for movie, stars in items]


def _frame(results: Sequence[MovieResult]) -> pd.DataFrame:
    rows = [r.to_dict() for r in results]
    frame = pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))
    present = [c for c in ANSWER_COLUMNS[:4]] + [
        c for c in ANSWER_COLUMNS[4:] if frame[c].notna().any()
    ]
    return frame[present].reset_index(drop=True)
