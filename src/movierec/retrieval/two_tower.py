"""Two-tower retrieval that learns from what users chose, with a history-driven query tower.

Query tower: the (dropped-out) list of movies the user rated, pooled from an item
embedding table, plus the user's id and side features, through a hidden layer and a dense
one. Histories are id lists padded per batch, so a batch costs what its histories hold, not
the size of the catalogue. Because the history drives the query, a visitor with no trained
id but some ratings still gets a meaningful embedding (the id is also dropped in training
so that case is in distribution). Candidate tower: movie id + genres, year and title
words. Score = query · candidate + a per-movie bias (carried as an extra embedding
column, so any dot-product index serves it).

Both towers also carry frozen paths. An item-item path: low-rank EASE on a session-weighted Gram
matrix (:mod:`movierec.retrieval.item_item`). The query adds the sum of its history's
rows of a query table, the candidate its row of a candidate table, so the dot product
adds ``item_scale * EASE score`` and serving stays one dot product at any catalogue
size. The path is fitted in closed form (its ``lambda`` chosen on held-out training
ratings) and left out of the training loss: a deep part trained as a correction to a
linear model fitted on the same rows overfits, while the plain sum is an ensemble.
``item_scale`` is set after training so that the path's scores spread
``item_item_share`` times as much as the deep part's (both measured as the mean
per-user standard deviation over the catalogue on training users): a rule, so the
balance follows the data set instead of being tuned for one.

A popularity path adds what was popular when the user was last active
(:mod:`movierec.retrieval.recent_popularity`): the candidate carries its standardised
rating counts per time bucket, the query a one-hot of the bucket of the user's latest
rating, scaled to ``recent_popularity_weight`` times the deep part's spread.

Training follows Mult-DAE / YouTube-DNN rather than rating regression:

- ``negatives="full"`` (default): each example is a user whose history is randomly
  thinned; the target is the multinomial likelihood of all their movies under a
  softmax over the *whole* catalogue (cross-entropy on the query × all-candidates
  score matrix, gathered at the history's ids).
- ``negatives="in-batch"``: for very large catalogues, (thinned history, held-out
  movie) pairs scored against the other targets in the batch, with accidental hits
  removed and log-Q sampling-probability correction.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from movierec.atomic import write_json
from movierec.data.features import FeatureTables, build_feature_tables
from movierec.data.histories import Histories, pad_lists
from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch, Retriever, unit_rows
from movierec.models.checkpoints import Checkpoints, Resume
from movierec.models.inference import CompiledInference, bucket, pad_rows
from movierec.progress import Measure, keras_progress, logger, model_label
from movierec.retrieval.item_item import (
    fit_item_item,
    fit_short_history,
    short_lambda,
    star_weights,
)
from movierec.retrieval.recent_popularity import recent_popularity
from movierec.retrieval.two_tower_examples import UserExamples
from movierec.retrieval.two_tower_network import (
    TwoTowerModel,
    rating_weight,
    training_optimizer,
)
from movierec.retrieval.two_tower_resume import run_fingerprint, train_epochs
from movierec.retrieval.two_tower_settings import TwoTowerSettings

FEATURES_FILE = "features.json"
SHORT_HISTORY_FILE = "short_history.npz"


@dataclass
class ShortHistoryPath:
    """The query-side mix for visitors known by a few ratings (see :class:`TwoTowerRetriever`).

    A query of someone the model was not trained on (the out-of-vocabulary user) with
    ``n`` ratings gets weight ``w = max(0, 1 - n / length)`` on this path
    (:class:`~movierec.retrieval.item_item.ShortHistoryFit`: a ridge projection with a
    ``lambda`` that follows ``n``) and ``1 - w`` on the network's query (deep part,
    long-history item-item path, popularity, bias), the path's scores rescaled per query
    to spread as much as the network's (so the blend with predicted stars means the same
    for every person). Known users' queries are the network's alone: it was trained on
    them. The path's columns follow the network's in both embeddings, so the score stays
    one dot product.

    Attributes:
        vectors: (movies, rank) eigenvectors: query rows and candidate columns alike.
        values: (rank,) eigenvalues.
        lambdas: ``lambda`` at each length of ``SHORT_LENGTHS``.
        length: Visitors with this many ratings or more do not use the path.
        rating_scale: (lowest, highest) stars, for :func:`star_weights`.
        network_probe: (p, d) network candidate rows the spreads are measured on.
        short_probe: (p, rank) the same movies' rows of ``vectors``.
    """

    vectors: np.ndarray
    values: np.ndarray
    lambdas: tuple[float, ...]
    length: int
    rating_scale: tuple[float, float]
    network_probe: np.ndarray
    short_probe: np.ndarray

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        values: np.ndarray,
        lambdas: tuple[float, ...],
        network_candidates: np.ndarray,
        *,
        length: int,
        rating_scale: tuple[float, float],
        seed: int,
    ) -> ShortHistoryPath:
        """The path, its spreads probed on up to 2,048 movies drawn with ``seed``."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(np.arange(1, len(vectors)),
                                  min(2048, len(vectors) - 1), replace=False))
        return cls(vectors, values, tuple(lambdas), length, rating_scale,
                   np.ascontiguousarray(network_candidates[rows]),
                   np.ascontiguousarray(vectors[rows]))

    def mix(self, queries: QueryBatch, network: np.ndarray, num_movies: int) -> np.ndarray:
        """``network``'s (n, d) queries, each joined with its short-history columns."""
        width = network.shape[1]
        out = np.zeros((len(queries), width + self.vectors.shape[1]), np.float32)
        out[:, :width] = network
        for row, (user, movies, stars) in enumerate(
            zip(queries.user_index, queries.histories, queries.history_ratings, strict=True)
        ):
            movies = np.asarray(movies, np.int64)
            ok = (movies > 0) & (movies < num_movies)
            count = int(ok.sum())
            weight = max(0.0, 1.0 - count / self.length) if user == 0 else 0.0
            if weight == 0.0:  # a known user, or a long enough history: the network's
                continue
            counts = star_weights(np.asarray(stars, np.float32)[ok], self.rating_scale)
            if not (counts > 0).any():  # nothing liked: the network's answer alone
                continue
            shrink = self.values / (self.values + short_lambda(self.lambdas, count))
            short = (counts @ self.vectors[movies[ok]]) * shrink
            own = float(np.std(self.short_probe @ short)) if len(self.short_probe) else 0.0
            if not own > 0.0:
                continue
            theirs = float(np.std(self.network_probe @ network[row]))
            out[row, :width] = (1.0 - weight) * network[row]
            out[row, width:] = (weight * theirs / own) * short
        return out


def _history_inputs(
    queries: QueryBatch, num_movies: int, mode: str, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, width) history ids and weights of ``queries``; unknown movies (index 0 or
    beyond the model's catalogue) drop out, rows past ``len(queries)`` are padding."""
    ids, weights = [], []
    for h, r in zip(queries.histories, queries.history_ratings, strict=True):
        h = np.asarray(h, np.int64)
        ok = (h > 0) & (h < num_movies)
        ids.append(h[ok].astype(np.int32))
        weights.append(rating_weight(np.asarray(r, np.float32)[ok], mode))
    width = bucket(max((len(i) for i in ids), default=0), minimum=8)
    return pad_lists(ids, weights, rows, width)


def _query_chunks(histories: list[np.ndarray], limit: int = 1 << 18) -> list[np.ndarray]:
    """Consecutive query rows in chunks of at most 1,024 whose padded histories hold at
    most ``limit`` ids (rows x widest history), so one long history does not make a
    whole chunk's input that wide."""
    chunks, start, widest = [], 0, 0
    for row, history in enumerate(histories):
        wider = max(widest, bucket(len(history), minimum=8))
        if row > start and (row - start >= 1024 or bucket(row - start + 1) * wider > limit):
            chunks.append(np.arange(start, row))
            start, wider = row, bucket(len(history), minimum=8)
        widest = wider
    if start < len(histories):
        chunks.append(np.arange(start, len(histories)))
    return chunks


@functools.singledispatch
def _fit(train: Any, retriever: TwoTowerRetriever, verbose: int, callbacks: list | None, options):
    """Fit ``retriever`` on ``train``: one implementation per kind of training set."""
    raise TypeError(f"cannot train the two-tower on a {type(train).__name__}")


@_fit.register(TrainingSet)
def _(train: TrainingSet, retriever: TwoTowerRetriever, verbose: int, callbacks, options):
    return retriever._fit_in_memory(train, verbose, callbacks, options)


@_fit.register(ShardedTrainingSet)
def _(train: ShardedTrainingSet, retriever: TwoTowerRetriever, verbose: int, callbacks, options):
    from movierec.retrieval.two_tower_stream import fit_streamed  # imports this module

    return fit_streamed(retriever, train, verbose, options)


class TwoTowerRetriever(Retriever):
    """The default retriever: history-driven two-tower model trained with a full softmax."""

    name = "two-tower"
    #: ``fit`` also takes a sharded training set (:mod:`movierec.retrieval.two_tower_stream`).
    streams = True
    #: (network, its compiled query tower), made on first use.
    _query_fn: tuple[Any, CompiledInference] | None = None

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.train: TrainingSet | None = None
        self._candidates: np.ndarray | None = None
        self._short: ShortHistoryPath | None = None
        # The network the explanations' tables were read from, the tables, the compiled
        # deep part (built on the first explanation).
        self._loo_tables: tuple[Any, dict[str, Any], CompiledInference] | None = None

    settings_class = TwoTowerSettings
    #: Trains in several processes (Keras ``DataParallel`` over all their devices).
    multi_process = True
    #: ``fit`` checkpoints and resumes (:mod:`movierec.retrieval.two_tower_resume`).
    saves_checkpoints = True

    def _new_model(
        self,
        train: TrainingSet | ShardedTrainingSet,
        tables: FeatureTables,
        time_buckets: int = 0,
    ) -> TwoTowerModel:
        s = self.settings
        if s["negatives"] not in ("full", "in-batch"):
            raise ValueError(f"negatives must be 'full' or 'in-batch', not {s['negatives']!r}")
        return TwoTowerModel(
            num_movies=train.movies.size,
            num_users=train.users.size,
            feature_sizes=tables.sizes(),
            embedding_dim=int(s["embedding_dim"]),
            feature_dim=int(s["feature_dim"]),
            activation=s["activation"],
            history_pooling=s["history_pooling"],
            use_user_id=bool(s["use_user_id"]),
            use_user_features=bool(s["use_user_features"]) and train.dataset.users is not None,
            use_movie_features=bool(s["use_movie_features"]),
            query_dropout=float(s["query_dropout"]),
            l2=float(s["l2"]),
            negatives=s["negatives"],
            temperature=float(s["temperature"]),
            item_item_rank=min(int(s["item_item_rank"]), train.movies.size),
            hidden_dim=int(s["hidden_dim"]),
            time_buckets=time_buckets,
        )

    def fit(
        self,
        train: TrainingSet | ShardedTrainingSet,
        *,
        verbose: int = 1,
        callbacks: list | None = None,
        options: Any = None,
    ) -> dict[str, list[float]]:
        """Train from scratch; ``callbacks`` (Keras) let experiments watch every epoch.

        A :class:`~movierec.data.shards.ShardedTrainingSet` trains streamed from its
        shards (:mod:`movierec.retrieval.two_tower_stream`); either way ``options``
        may checkpoint and resume the run (:mod:`movierec.retrieval.two_tower_resume`).

        Args:
            train: A :class:`TrainingSet`, or an open sharded training set to stream.
            verbose: 0 trains silently; above 0 logs one labelled line per epoch
                (:func:`~movierec.progress.keras_progress`), never Keras's own bars.
            callbacks: Keras callbacks for every epoch.
            options: A :class:`~movierec.ranking.trainer.TrainOptions`:
                ``checkpoint_dir`` saves the run there (process 0) at every epoch end
                and every ``checkpoint_steps`` steps, ``resume`` continues it.

        Returns:
            Keras's per-epoch history, plus ``seconds`` and, with the item-item path,
            ``item_item_lambda`` and ``item_item_scale`` (one value each).

        Raises:
            ModelError: A checkpoint of another run, or no training ratings.
        """
        wants = options is not None and getattr(options, "checkpoint_dir", None) is not None
        return _fit(train, self, verbose, callbacks, options if wants else None)

    def _fit_in_memory(
        self, train: TrainingSet, verbose: int, callbacks: list | None, options: Any = None
    ) -> dict[str, list[float]]:
        """:meth:`fit` on a training set held in memory (``options``: checkpoints)."""
        s = self.settings
        if len(train) == 0:
            raise ModelError("two-tower: the training set has no ratings")
        fingerprint = run_fingerprint(
            self.name,
            s,
            train.users.size,
            train.movies.size,
            [train.user_index, train.movie_index, train.rating],
        )
        checkpoints, resume = self.open_checkpoints(fingerprint, options)
        keras.utils.set_random_seed(int(s["seed"]))
        tables = build_feature_tables(train)
        popularity = (
            recent_popularity(train, int(s["recent_popularity_buckets"]))
            if float(s["recent_popularity_weight"]) > 0
            else None
        )
        model = self._new_model(train, tables, popularity.buckets if popularity else 0)
        model.set_feature_tables(tables)
        if popularity is not None:
            model.popularity_table.assign(popularity.table)
            model.user_time_bucket.assign(popularity.user_bucket)
        start = time.perf_counter()
        examples = UserExamples(train, s, int(s["seed"]))
        model.compile(optimizer=training_optimizer(s, examples.steps()))
        self.network, self.train, self._tables = model, train, tables
        if s["negatives"] == "full":
            guess = np.log(max(train.movies.size - 1, 1))  # the same odds for every movie
            unit = f"(cross-entropy per rated movie; a uniform guess scores {guess:.2f})"
        else:
            unit = "(cross-entropy per rating, against the batch's other movies)"
        shown = [Measure("loss_per_movie", "loss", unit)]
        # Process 0 speaks for a multi-process run, as the dcn's trainer does.
        progress = keras_progress(
            model_label(self),
            shown,
            verbose if examples.process == 0 else 0,
            ratings_per_step=len(train) / max(np.ceil(examples.examples / examples.batch_size), 1),
        )
        result = train_epochs(
            model,
            examples,
            epochs=int(s["epochs"]),
            callbacks=[*(callbacks or []), *progress],
            checkpoints=checkpoints,
            every=int(getattr(options, "checkpoint_steps", 0) or 0),
            resume=resume,
        )
        self._candidates = None
        if model.item_item_rank:
            found = fit_item_item(
                train,
                rank=model.item_item_rank,
                window_seconds=float(s["item_item_session_seconds"]),
                far_weight=float(s["item_item_far_weight"]),
                seed=int(s["seed"]),
                l2=None if s["item_item_lambda"] is None else float(s["item_item_lambda"]),
            )
            model.item_query_table.assign(found.query_table)
            model.item_candidate_table.assign(found.candidate_table)
            result["item_item_lambda"] = [found.l2]
            if verbose > 0:
                logger.info("%s: item-item path fitted (lambda %g)", model_label(self), found.l2)
        self._short = None
        self._set_path_scales()
        if model.item_item_rank:
            result["item_item_scale"] = [float(model.item_scale.numpy())]
            length = int(s["short_history_length"])
            if length > 0:
                self._short = self._fit_short_path(train, length)
                self._candidates = None  # now with the short path's columns
                result["short_history_lambdas"] = list(self._short.lambdas)
        result["seconds"] = [time.perf_counter() - start]
        return result

    def open_checkpoints(
        self, fingerprint: dict[str, Any], options: Any
    ) -> tuple[Checkpoints | None, tuple[Resume, dict[str, np.ndarray]] | None]:
        """The run's checkpoint directory (``options.checkpoint_dir``; process 0 writes)
        for the run ``fingerprint`` names and, with ``options.resume``, where it stopped
        (in memory and streamed alike)."""
        import jax

        if options is None or getattr(options, "checkpoint_dir", None) is None:
            return None, None
        checkpoints = Checkpoints(
            options.checkpoint_dir, fingerprint, writes=jax.process_index() == 0
        )
        if not options.resume:
            if checkpoints.writes:
                checkpoints.directory.mkdir(parents=True, exist_ok=True)
            return checkpoints, None
        checkpoints.check_resumable()
        resume = checkpoints.load_state(0)
        if resume is None:
            raise ModelError(f"--resume {checkpoints.directory}: no two-tower checkpoint in it")
        return checkpoints, resume

    def _fit_short_path(self, train: TrainingSet, length: int) -> ShortHistoryPath:
        """The short-history path, its ``lambda`` chosen for histories of 1-10 ratings
        (:func:`~movierec.retrieval.item_item.fit_short_history`)."""
        s = self.settings
        found = fit_short_history(
            train,
            rank=int(s["short_history_rank"]),
            seed=int(s["seed"]),
            l2=None if s["short_history_lambda"] is None else float(s["short_history_lambda"]),
        )
        logger.debug("%s: short-history path lambdas %s", model_label(self), found.lambdas)
        low, high = train.dataset.rating_scale
        return ShortHistoryPath.build(
            found.vectors,
            found.values,
            found.lambdas,
            self.candidate_embeddings(),
            length=length,
            rating_scale=(float(low), float(high)),
            seed=int(s["seed"]),
        )

    def _set_path_scales(self, by_user: Histories | None = None, users: int = 1000) -> None:
        """Weigh the frozen paths against the deep part by their spread: ``item_scale``
        makes the item-item scores spread ``item_item_share`` times as much as the deep
        scores, ``popularity_scale`` is ``recent_popularity_weight`` times the deep
        spread (its table is already standardised). Spread = mean per-user standard
        deviation over the catalogue, on up to ``users`` training users picked by the
        seed (``by_user``: their histories, by default the training set's)."""
        model = self.require_network()
        if not (model.item_item_rank or model.time_buckets):
            return
        if model.item_item_rank:
            model.item_scale.assign(1.0)  # the spread is measured at scale 1
        self._candidates = None
        if by_user is None:
            if self.train is None:
                raise ModelError("the two-tower model has no training set to measure spreads on")
            by_user = self.train.by_user
        rng = np.random.default_rng(int(self.settings["seed"]))
        known = np.flatnonzero(np.diff(by_user.offsets) > 0)
        sample = rng.choice(known, min(users, len(known)), replace=False).astype(np.int32)
        queries = self.query_embeddings(QueryBatch.from_histories(by_user, sample))
        candidates = self.candidate_embeddings()
        cols = model.column_slices()

        def spread(path: str) -> float:
            """Mean per-user standard deviation of one path's scores over the catalogue."""
            scores = queries[:, cols[path]] @ candidates[:, cols[path]].T
            return float(np.mean(scores[:, 1:].std(axis=1)))

        deep = spread("deep")
        if model.item_item_rank:
            share = float(self.settings["item_item_share"])
            model.item_scale.assign(share * deep / max(spread("item_item"), 1e-12))
        if model.time_buckets:
            model.popularity_scale.assign(float(self.settings["recent_popularity_weight"]) * deep)
        self._candidates = None

    def query_embeddings(self, queries: QueryBatch) -> np.ndarray:
        """(n, query_dim) float32 query embeddings, computed in chunks of bounded history."""
        model = self.require_network()
        if self._query_fn is None or self._query_fn[0] is not model:
            self._query_fn = (model, CompiledInference(model, model.query))
        compiled = self._query_fn[1]
        users = np.where(queries.user_index < model.num_users, queries.user_index, 0)
        out = [np.zeros((0, model.query_dim), np.float32)]
        mode = self.settings["rating_weighting"]
        for chunk in _query_chunks(queries.histories):
            start = int(chunk[0])
            part = queries.take(chunk)
            rows = bucket(len(part))
            history, weight = _history_inputs(part, model.num_movies, mode, rows)
            inputs = {
                "user": pad_rows(users[start : start + len(part)], rows),
                "history": history,
                "history_weight": weight,
            }
            out.append(compiled(inputs)[: len(part)].astype(np.float32, copy=False))
        network = np.concatenate(out)
        if self._short is None:
            return network
        return self._short.mix(queries, network, model.num_movies)

    def leave_one_out_embeddings(self, query: QueryBatch) -> np.ndarray:
        """(1 + n, query_dim) query embeddings of one query and of it without each of its
        ``n`` rated movies (see :meth:`Retriever.leave_one_out_embeddings`), computed from
        the pooled history instead of reading ``n`` histories again: the pooling is a
        weighted sum over the history divided by (the root of) the total weight, so
        leaving movie ``j`` out is ``(S - w_j e_j) / norm(T - w_j)`` and only the dense
        layers run on the ``1 + n`` rows. The item-item columns are a plain sum over
        the history (each movie's row leaves exactly), the popularity and bias columns
        do not read the history. A visitor whose query (or a one-shorter one) takes
        the short-history path is short enough for the general computation."""
        model = self.require_network()
        user, movies = int(query.user_index[0]), np.asarray(query.histories[0], np.int64)
        ok = (movies > 0) & (movies < model.num_movies)
        short = self._short
        if short is not None and user == 0 and int(ok.sum()) <= short.length:
            return super().leave_one_out_embeddings(query)
        if self._loo_tables is None or self._loo_tables[0] is not model:
            tables = {"history": np.asarray(model.history_embedding.embeddings, np.float32)}
            if model.item_item_rank:
                scale = float(np.asarray(model.item_scale.numpy()))
                tables["item"] = np.asarray(model.item_query_table.numpy(), np.float32) * scale
            if model.time_buckets:
                tables["when"] = np.asarray(model.user_time_bucket.numpy())
                tables["popularity"] = np.asarray(model.popularity_scale.numpy(), np.float32)
            self._loo_tables = (model, tables, CompiledInference(model, model.deep_query))
        tables = self._loo_tables[1]
        embedding = tables["history"]
        stars = np.asarray(query.history_ratings[0], np.float32)
        weight = np.where(ok, rating_weight(stars, self.settings["rating_weighting"]), 0)
        weight = weight.astype(np.float32)
        each = embedding[np.where(ok, movies, 0)] * weight[:, None]  # (n, d), 0 if unknown
        total = float(weight.sum())
        pooled = np.concatenate([each.sum(axis=0)[None], each.sum(axis=0) - each])
        totals = np.concatenate([[total], total - weight])[:, None].astype(np.float32)
        rows = bucket(len(movies) + 1)  # a few compiled programs for any history length
        users = np.full(rows, user if user < model.num_users else 0, np.int32)
        sums = {"history_sum": pad_rows(pooled, rows), "history_total": pad_rows(totals, rows)}
        deep = self._loo_tables[2]({**sums, "user": users})
        out = np.zeros((len(movies) + 1, len(self.candidate_embeddings()[0])), np.float32)
        out[:, : model.embedding_dim] = deep[: len(movies) + 1]
        cols = model.column_slices()
        if model.item_item_rank:
            item_rows = tables["item"][np.where(ok, movies, 0)] * ok[:, None]
            out[:, cols["item_item"]] = item_rows.sum(axis=0)
            out[1:, cols["item_item"]] -= item_rows
        if model.time_buckets:
            when = int(tables["when"][users[0]])
            out[:, cols["popularity"].start + when] = tables["popularity"]
        out[:, model.query_dim - 1] = 1.0  # the bias column
        return out

    def similar_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Similarity = the EASE row (what having rated the movie predicts) plus
        ``similar_deep_weight`` times the deep candidate embeddings' cosine, each divided
        by its spread over the catalogue for that movie (so neither dominates by scale).
        Per-movie divisors fold into the query side, keeping it one dot product; spreads
        are measured against up to 4,096 movies picked by the seed. Plain cosine when the
        model has no item-item path."""
        model = self.require_network()
        candidates = self.candidate_embeddings()
        cols = model.column_slices()
        deep = unit_rows(candidates[:, cols["deep"]])
        if not model.item_item_rank:
            return deep, deep
        linear = candidates[:, cols["item_item"]]
        query = np.asarray(model.item_query_table.numpy())
        rng = np.random.default_rng(int(self.settings["seed"]))
        sample = rng.choice(len(deep), min(len(deep), 4096), replace=False)
        spread_linear = np.empty(len(deep), np.float32)
        spread_deep = np.empty(len(deep), np.float32)
        for start in range(0, len(deep), 1024):
            rows = slice(start, start + 1024)
            spread_linear[rows] = (query[rows] @ linear[sample].T).std(axis=1)
            spread_deep[rows] = (deep[rows] @ deep[sample].T).std(axis=1)
        weight = float(self.settings["similar_deep_weight"])
        side = np.concatenate(
            [
                query / np.maximum(spread_linear, 1e-12)[:, None],
                deep * (weight / np.maximum(spread_deep, 1e-12))[:, None],
            ],
            axis=1,
        )
        return side.astype(np.float32), np.concatenate([linear, deep], axis=1)

    def candidate_embeddings(self) -> np.ndarray:
        """(movies, query_dim) float32 candidate embeddings, computed once and cached."""
        model = self.require_network()
        if self._candidates is None:
            network = np.asarray(model.candidates(), dtype=np.float32)
            if self._short is not None:
                network = np.concatenate([network, self._short.vectors], axis=1)
            self._candidates = np.ascontiguousarray(network, dtype=np.float32)
        return self._candidates

    def save_extras(self, directory: Path) -> None:
        """Write the side-feature vocabularies (``features.json``) beside the network,
        and the short-history path (``short_history.npz``) when there is one."""
        write_json(directory / FEATURES_FILE, self._tables.vocabularies)
        if self._short is not None:
            short = self._short
            np.savez(
                directory / SHORT_HISTORY_FILE,
                vectors=short.vectors,
                values=short.values,
                lambdas=np.array(short.lambdas),
                meta=np.array([short.length, *short.rating_scale]),
            )

    def restore(self, directory: Path, train: TrainingSet) -> None:
        """Read back the side-feature vocabularies (none if the file is missing)."""
        vocab_path = directory / FEATURES_FILE
        vocabularies = json.loads(vocab_path.read_text()) if vocab_path.is_file() else {}
        self.train = train
        self._tables = FeatureTables(movie={}, user={}, vocabularies=vocabularies)
        self._short = None
        if (directory / SHORT_HISTORY_FILE).is_file():
            with np.load(directory / SHORT_HISTORY_FILE) as saved:
                length, low, high = (float(v) for v in saved["meta"])
                self._short = ShortHistoryPath.build(
                    saved["vectors"],
                    saved["values"],
                    tuple(float(v) for v in saved["lambdas"]),
                    np.asarray(self.require_network().candidates(), dtype=np.float32),
                    length=int(length),
                    rating_scale=(low, high),
                    seed=int(self.settings["seed"]),
                )
            self._candidates = None
