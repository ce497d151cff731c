"""Visitor benchmark: how good are the lists of someone described only by n ratings?

The protocol of issue 20, one random 80/20 split per seed (``make_split(..., "random",
seed, 0.2)``), every model fitted on its train part:

- For up to ``--users`` test users with at least ``n + 5`` test ratings (a seeded draw
  per n), ``n`` of their *test* ratings (a seeded draw) are given as a visitor's
  ratings: ``Recommender.recommend(None, k=10, extra_ratings=[(movie, stars), ...])``,
  what the web page and ``POST /recommendations`` use. Relevant = the rest of that
  user's test ratings (no model has seen them); the n given movies are excluded from
  every list (movierec excludes them itself, as the visitor's history). n = 1, 3, 5, 10.
- Light users: known users with at most 20 training ratings, the standard test
  evaluation (relevant = their test ratings, training movies excluded).

Metric: NDCG@10 and Recall@10 from :func:`movierec.metrics.top_k_metrics` for every
row (also NDCG@10 with only 4+ star ratings relevant, in the JSON).

Rows (peers see the same n movies and stars; what each one reads is in its label):

- ``movierec recommend``: the two-stage answer (retrieve 200, rank with the dcn, blend).
- ``movierec retrieval``: the retriever's scores for the visitor query alone, the
  query vector built as the pipeline builds it (``Recommender._query`` and
  ``_query_vector``) against the candidate matrix the index serves.
- ``movierec item-item path`` / ``movierec deep part``: diagnostics, the same query
  vector cut to one path's columns (deep part: deep columns plus the per-movie bias).
- ``EASE fold-in, λ 500`` and ``EASE fold-in, λ visitor-tuned``: ``x · B`` with ``x`` the
  visitor's binary row and ``B`` exact EASE fitted on the training ratings; the tuned
  λ is chosen by this same protocol on held-out *users* of the training ratings (their
  training ratings out of the fit, n given, the rest relevant; mean NDCG@10 over the n
  values), then scaled up by the Gram matrix's size ratio, as
  :func:`movierec.retrieval.item_item.choose_l2` does.
- ``item-kNN``: the sum of the cosine rows of the n movies (cosine between the columns
  of the binary training matrix).
- ``item-kNN, star-weighted``: the same rows weighted by ``stars - 2.5`` (a 1-star
  rating counts -1.5, so movies like it go down; 5 stars count 2.5).
- ``session-kNN``: SKNN (Jannach & Ludewig, RecSys 2017) with the visitor's movies as
  the session: the 100 training users nearest by cosine of binary rows
  (``|overlap| / sqrt(n * |history|)``), each movie scored by the summed similarity of
  the neighbours who rated it.
- ``popularity``: training rating counts. ``random``: seeded uniform scores (the floor).

Light-user rows: ``movierec recommend`` and ``movierec retrieval`` through the
known-user path, ``EASE`` (λ chosen by ``choose_l2`` on held-out training ratings, as
``benchmarks/quality.py`` fits it), ``EASE, λ 500``, ``item-kNN`` and ``popularity``.

    python benchmarks/visitors.py                       # ML-100K, seed 42, trains both models
    python benchmarks/visitors.py --models /tmp/m-{seed}  # `train --holdout --seed S` dirs
    python benchmarks/visitors.py --data ../shared/data/ml-latest-small-2016 --seed 42 43 44
    python benchmarks/visitors.py --smoke               # seconds: 1 epoch, few users

``--models DIR`` reuses models trained on the split's train part (``movierec train --holdout
--seed S --models DIR``, random split, test fraction 0.2; ``{seed}`` in DIR is replaced
by each seed); the script checks the manifest's split against its own. Without it the
default models are trained here through :func:`movierec.workflow.train_model` (as
``benchmarks/quality.py`` does) and kept with ``--save-models``. Writes
``benchmarks/results/visitors-<data>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

import movierec  # noqa: F401  (Keras backend)
from movierec.data import load_dataset, make_split
from movierec.data.training import TrainingSet
from movierec.metrics import sample_users, top_k_metrics
from movierec.models.base import QueryBatch, unit_rows
from movierec.models.registry import DEFAULT_RANKER, DEFAULT_RETRIEVER
from movierec.retrieval.item_item import choose_l2, ease_weights, interaction_matrix
from movierec.retrieval.topk import top_k

sys.path.insert(0, str(Path(__file__).parent))
from reporting import table, write_json  # noqa: E402

NS = (1, 3, 5, 10)
K = 10
#: Test ratings a user needs beyond the n given ones.
SPARE = 5
LIGHT_MAX_TRAINING = 20
EASE_FIXED_LAMBDA = 500.0
VISITOR_LAMBDA_GRID = tuple(250.0 * 4.0**k for k in range(5))  # 250 ... 64,000
#: Share of training users held out of the fit while tuning the visitor λ.
VALIDATION_USERS = 0.15
STAR_CENTRE = 2.5
SKNN_NEIGHBOURS = 100
MOVIEREC_RECOMMEND = "movierec recommend"
MOVIEREC_RETRIEVAL = "movierec retrieval"


@dataclass
class Visitor:
    """One test user seen as a visitor: what they give and what is then relevant.

    Attributes:
        user: The user's index in the training set (their id is never given).
        given: Movie indices of the n ratings given as the visitor's ratings.
        stars: Their stars, aligned with ``given``.
        relevant: Movie indices of the rest of the user's test ratings.
        liked: The subset of ``relevant`` rated 4 stars or more.
    """

    user: int
    given: np.ndarray
    stars: np.ndarray
    relevant: set[int]
    liked: set[int]


#: A visitor scorer: (visitors x movies) scores for a batch of visitors.
Scorer = Callable[[list[Visitor]], np.ndarray]


def ratings_by_user(
    train: TrainingSet, test
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each test user's (movie indices, stars), movies unknown to ``train`` left out,
    in the test frame's order."""
    users = train.users.lookup(test["user_id"])
    movies = train.movies.lookup(test["movie_id"])
    stars = test["rating"].to_numpy(np.float32)
    known = (users > 0) & (movies > 0)
    users, movies, stars = users[known], movies[known], stars[known]
    order = np.argsort(users, kind="stable")
    users, movies, stars = users[order], movies[order], stars[order]
    distinct, starts = np.unique(users, return_index=True)
    bounds = np.append(starts, len(users))
    return {
        int(u): (movies[a:b].astype(np.int32), stars[a:b])
        for u, a, b in zip(distinct, bounds[:-1], bounds[1:], strict=True)
    }


def draw_visitors(
    by_user: dict[int, tuple[np.ndarray, np.ndarray]], n: int, max_users: int, seed: int
) -> list[Visitor]:
    """Up to ``max_users`` users with at least ``n + SPARE`` test ratings (seeded by
    ``(seed, n)``), each giving ``n`` of their test ratings drawn by the same generator."""
    rng = np.random.default_rng([seed, n])
    eligible = np.array(sorted(u for u, (m, _) in by_user.items() if len(m) >= n + SPARE))
    visitors = []
    for user in sample_users(eligible, max_users, rng):
        movies, stars = by_user[int(user)]
        pick = np.zeros(len(movies), bool)
        pick[rng.choice(len(movies), n, replace=False)] = True
        rest_movies, rest_stars = movies[~pick], stars[~pick]
        visitors.append(Visitor(
            user=int(user),
            given=movies[pick],
            stars=stars[pick],
            relevant=set(rest_movies.tolist()),
            liked=set(rest_movies[rest_stars >= 4.0].tolist()),
        ))
    return visitors


def visitor_rows(visitors: Sequence[Visitor], size: int, weights: str = "binary") -> np.ndarray:
    """(visitors, size) dense rows of the given movies: 1 each (``binary``) or
    ``stars - STAR_CENTRE`` (``stars``)."""
    rows = np.zeros((len(visitors), size), np.float32)
    for i, v in enumerate(visitors):
        rows[i, v.given] = 1.0 if weights == "binary" else v.stars - STAR_CENTRE
    return rows


def ranked_lists(scores: np.ndarray, visitors: Sequence[Visitor]) -> np.ndarray:
    """Top ``K`` movie indices per visitor, their given movies (and movie 0) excluded."""
    return top_k(scores, K, [v.given for v in visitors])[1]


def list_metrics(ranked: Sequence[Sequence[int]], visitors: Sequence[Visitor]) -> dict[str, float]:
    """NDCG@10 and Recall@10 (all relevant), and NDCG@10 with 4+ stars relevant."""
    every = top_k_metrics(ranked, [v.relevant for v in visitors], K)
    liked = top_k_metrics(ranked, [v.liked for v in visitors], K)
    return {
        "ndcg@10": every["ndcg"],
        "recall@10": every["recall"],
        "ndcg@10 (4+)": liked["ndcg"],
        "users": len(visitors),
    }


# -- peers -------------------------------------------------------------------------------


def gram_matrix(matrix: sparse.csr_matrix) -> np.ndarray:
    """``X^T X`` of a binary users x movies matrix, dense float64."""
    return (matrix.T @ matrix).toarray().astype(np.float64)


def cosine_matrix(matrix: sparse.csr_matrix) -> np.ndarray:
    """(movies, movies) cosine between the columns of the binary training matrix."""
    columns = unit_rows(matrix.T.tocsr().toarray().astype(np.float32))
    return columns @ columns.T


def fold_in(weights: np.ndarray, mode: str = "binary") -> Scorer:
    """``x · W`` for each visitor's row ``x`` (``mode``: see :func:`visitor_rows`)."""
    return lambda visitors: visitor_rows(visitors, len(weights), mode) @ weights


def session_knn(matrix: sparse.csr_matrix, neighbours: int = SKNN_NEIGHBOURS) -> Scorer:
    """SKNN: the ``neighbours`` training users nearest to the visitor's movies by cosine
    of binary rows vote for the movies they rated with their similarity."""
    lengths = np.sqrt(np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1.0))
    by_movie = matrix.T.tocsr()  # movies x users

    def score(visitors: list[Visitor]) -> np.ndarray:
        rows = visitor_rows(visitors, matrix.shape[1])
        overlap = np.asarray(matrix @ rows.T).T.astype(np.float32)  # visitors x users
        similarity = overlap / lengths[None, :] / np.sqrt(rows.sum(axis=1, keepdims=True))
        keep = min(neighbours, similarity.shape[1])
        cut = -np.partition(-similarity, keep - 1, axis=1)[:, keep - 1 : keep]
        similarity[similarity < cut] = 0.0
        return np.asarray(by_movie @ similarity.T).T

    return score


def tune_visitor_lambda(
    train: TrainingSet, ns: Sequence[int], seed: int, max_users: int,
    grid: Sequence[float] = VISITOR_LAMBDA_GRID,
) -> tuple[float, dict[float, dict[str, float]]]:
    """EASE's λ for visitors, chosen by the visitor protocol inside the training ratings.

    A seeded :data:`VALIDATION_USERS` share of the training users is held out; ``B`` is
    fitted on the other users' ratings for every λ of ``grid``; each held-out user with
    at least ``n + SPARE`` training ratings gives ``n`` of them (for each ``n`` in
    ``ns``, up to ``max_users`` users) and the rest are relevant. The λ with the best
    mean NDCG@10 over the n values is scaled by the Gram matrices' size ratio (all
    ratings over the fitted ones).

    Returns:
        The chosen λ and, for every grid value, the validation NDCG@10 at each n and
        their mean.
    """
    rng = np.random.default_rng([seed, 20])
    matrix = interaction_matrix(train)
    users = np.flatnonzero(np.diff(matrix.indptr) > 0)
    held = rng.choice(users, max(1, round(VALIDATION_USERS * len(users))), replace=False)
    keep = np.ones(matrix.shape[0], np.float32)
    keep[held] = 0.0
    fitted = sparse.diags(keep) @ matrix
    fitted.eliminate_zeros()
    by_user = {}
    for u in held:
        movies = matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]]
        by_user[int(u)] = (movies.astype(np.int32), np.full(len(movies), 4.0, np.float32))
    cases = {n: draw_visitors(by_user, n, max_users, seed) for n in ns}
    gram = gram_matrix(fitted)
    scores: dict[float, dict[str, float]] = {}
    for l2 in grid:
        weights = ease_weights(gram, l2).astype(np.float32)
        per_n = {
            str(n): list_metrics(ranked_lists(fold_in(weights)(v), v), v)["ndcg@10"]
            for n, v in cases.items() if v
        }
        scores[l2] = {**per_n, "mean": float(np.mean(list(per_n.values()))) if per_n else 0.0}
    best = max(scores, key=lambda k: (scores[k]["mean"], k))
    return best * matrix.nnz / max(fitted.nnz, 1), scores


# -- movierec ----------------------------------------------------------------------------


class MovierecVisitor:
    """movierec's answers for visitors, through :class:`movierec.pipeline.Recommender`.

    Query vectors are built once per visitor the way ``recommend`` builds them and
    cached, so the retrieval row and the path diagnostics read the same vectors.
    """

    def __init__(self, recommender: Any):
        self.recommender = recommender
        self.train = recommender.retrieval.train
        self.candidates = np.asarray(recommender._candidates, np.float32)
        network = getattr(recommender.retrieval.retriever, "network", None)  # reads it
        self.columns = network.column_slices() if hasattr(network, "column_slices") else {}
        # The network's columns end with the bias; the short-history path's follow it.
        self.bias = max((c.stop for c in self.columns.values()), default=-1)
        if self.columns and self.candidates.shape[1] > self.bias + 1:
            self.columns["short_history"] = slice(self.bias + 1, self.candidates.shape[1])

    def ratings(self, visitor: Visitor) -> list[tuple[str, float]]:
        """The visitor's ``extra_ratings``: (raw movie id, stars)."""
        ids = self.train.movies.id_of
        return [(ids(int(m)), float(s)) for m, s in zip(visitor.given, visitor.stars, strict=True)]

    def query_vectors(self, visitors: list[Visitor]) -> np.ndarray:
        """(visitors, d) query vectors, as ``Recommender.recommend(None, ...)`` builds them."""
        rec = self.recommender
        rows = []
        for visitor in visitors:
            extra = self.ratings(visitor)
            rows.append(rec._query_vector(rec._query(rec.retrieval, None, extra), extra)[0])
        return np.asarray(rows, np.float32)

    def path_scorer(self, path: str | None) -> Scorer:
        """Scores of the whole query vector (``None``) or of one path's columns; ``deep``
        also keeps the bias column (the last one)."""

        def score(visitors: list[Visitor]) -> np.ndarray:
            queries = self.query_vectors(visitors)
            if path is None:
                return queries @ self.candidates.T
            cols = np.zeros(queries.shape[1], bool)
            cols[self.columns[path]] = True
            if path == "deep":
                cols[self.bias] = True
            return queries[:, cols] @ self.candidates[:, cols].T

        return score

    def spreads(self, visitors: list[Visitor]) -> dict[str, float]:
        """Mean per-visitor standard deviation over the catalogue of each path's scores
        as served (scales applied): how much each path can move a list."""
        queries = self.query_vectors(visitors)
        out = {}
        for path, cols in self.columns.items():
            if cols.stop > cols.start:
                scores = queries[:, cols] @ self.candidates[:, cols].T
                out[path] = float(np.mean(scores[:, 1:].std(axis=1)))
        out["bias"] = float(self.candidates[1:, self.bias].std())
        return out

    def recommend(self, visitors: list[Visitor]) -> list[list[int]]:
        """Ranked movie indices of ``recommend(None, k=10, extra_ratings=...)``."""
        lookup = self.train.movies.index
        return [
            [lookup(item.movie_id) for item in
             self.recommender.recommend(None, k=K, extra_ratings=self.ratings(v)).items]
            for v in visitors
        ]


def known_user_rows(
    recommender: Any, train: TrainingSet, test, ease_tuned: np.ndarray, ease_fixed: np.ndarray,
    cosine: np.ndarray, counts: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Light users (at most :data:`LIGHT_MAX_TRAINING` training ratings): standard test
    evaluation of the known-user path and the peers, training movies excluded."""
    matrix = interaction_matrix(train)
    lengths = np.diff(matrix.indptr)
    by_user = ratings_by_user(train, test)
    users = [u for u in sorted(by_user) if 0 < lengths[u] <= LIGHT_MAX_TRAINING]
    cases = [
        Visitor(
            user=u,
            given=matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]].astype(np.int32),
            stars=np.zeros(lengths[u], np.float32),
            relevant=set(by_user[u][0].tolist()),
            liked=set(by_user[u][0][by_user[u][1] >= 4.0].tolist()),
        )
        for u in users
    ]
    rows: dict[str, dict[str, float]] = {}
    if not cases:
        return rows
    history = matrix[users].toarray().astype(np.float32)
    ids = train.users.id_of
    candidates = np.asarray(recommender._candidates, np.float32)
    retrieval = []
    for u in users:
        query = recommender._query(recommender.retrieval, ids(u), ())
        retrieval.append(recommender._query_vector(query, ())[0])
    lookup = train.movies.index
    recommended = [
        [lookup(i.movie_id) for i in recommender.recommend(ids(u), k=K).items] for u in users
    ]
    scored = {
        MOVIEREC_RETRIEVAL: np.asarray(retrieval, np.float32) @ candidates.T,
        "EASE, λ tuned": history @ ease_tuned,
        f"EASE, λ {EASE_FIXED_LAMBDA:g}": history @ ease_fixed,
        "item-kNN": history @ cosine,
        "popularity": np.tile(counts, (len(users), 1)),
    }
    rows[MOVIEREC_RECOMMEND] = list_metrics(recommended, cases)
    for label, scores in scored.items():
        rows[label] = list_metrics(ranked_lists(scores, cases), cases)
    return rows


# -- one seed ----------------------------------------------------------------------------


def load_or_train(dataset, split, seed: int, args) -> tuple[Any, str]:
    """The :class:`Recommender` of this split: loaded from ``--models`` (after checking
    its manifest's split) or trained here; also where it lies."""
    from movierec.models.artifacts import read_manifest
    from movierec.pipeline import Recommender
    from movierec.workflow import train_model

    if args.models:
        directory = Path(str(args.models).replace("{seed}", str(seed)))
        manifest = read_manifest(directory / "retrieval")
        found = manifest.get("split", {})
        expected = {"method": "random", "seed": seed, "test_fraction": 0.2,
                    "train_ratings": len(split.train)}
        differ = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
        if differ:
            raise SystemExit(f"{directory}: trained on another split than seed {seed}: {differ}")
        return Recommender.load(directory), str(directory)
    directory = Path(args.save_models or tempfile.mkdtemp(prefix="visitors-models-"))
    directory = Path(str(directory).replace("{seed}", str(seed)))
    for kind, name in (("retrieval", DEFAULT_RETRIEVER), ("ranking", DEFAULT_RANKER)):
        settings: dict[str, Any] = {"seed": seed}
        if args.smoke:
            settings["epochs"] = 1
        started = time.perf_counter()
        train_model(kind, name, dataset, split.train, settings=settings,
                    split_info=split.info, out_dir=directory / kind,
                    data_source=str(args.data), verbose=0)
        print(f"  trained {kind} '{name}' in {time.perf_counter() - started:.0f} s", flush=True)
    return Recommender.load(directory), str(directory)


def run_seed(dataset, seed: int, args) -> dict[str, Any]:
    """Every row of both tables for one seed's split."""
    split = make_split(dataset.ratings, "random", seed=seed, test_fraction=0.2)
    recommender, where = load_or_train(dataset, split, seed, args)
    train = recommender.retrieval.train
    if len(train) != len(split.train):
        raise SystemExit(
            f"{where}: {len(train)} training ratings, the split has {len(split.train)}"
        )
    matrix = interaction_matrix(train)
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float32)
    started = time.perf_counter()
    gram = gram_matrix(matrix)
    cosine = cosine_matrix(matrix)
    ease_fixed = ease_weights(gram, EASE_FIXED_LAMBDA).astype(np.float32)
    visitor_l2, visitor_grid = tune_visitor_lambda(train, args.ns, seed, args.users)
    ease_visitor = ease_weights(gram, visitor_l2).astype(np.float32)
    tuned = time.perf_counter()
    known_l2, _ = choose_l2(
        train, rank=train.movies.size, window_seconds=0.0, far_weight=1.0, seed=seed
    )
    ease_known = ease_weights(gram, known_l2).astype(np.float32)
    print(f"  peers fitted in {time.perf_counter() - started:.0f} s (known-user λ: "
          f"{time.perf_counter() - tuned:.0f} s): visitor λ {visitor_l2:.0f}, "
          f"known-user λ {known_l2:.0f}", flush=True)
    movierec_side = MovierecVisitor(recommender)
    random_rng = np.random.default_rng([seed, 99])
    scorers: dict[str, Scorer] = {
        MOVIEREC_RETRIEVAL: movierec_side.path_scorer(None),
    }
    if "item_item" in movierec_side.columns:
        scorers["movierec item-item path"] = movierec_side.path_scorer("item_item")
    if "deep" in movierec_side.columns:
        scorers["movierec deep part"] = movierec_side.path_scorer("deep")
    if "short_history" in movierec_side.columns:
        scorers["movierec short-history path"] = movierec_side.path_scorer("short_history")
    scorers |= {
        f"EASE fold-in, λ {EASE_FIXED_LAMBDA:g}": fold_in(ease_fixed),
        "EASE fold-in, λ visitor-tuned": fold_in(ease_visitor),
        "item-kNN": fold_in(cosine),
        "item-kNN, star-weighted": fold_in(cosine, "stars"),
        "session-kNN": session_knn(matrix),
        "popularity": lambda v: np.tile(counts, (len(v), 1)),
        "random": lambda v: random_rng.random((len(v), len(counts)), np.float32),
    }
    visitors: dict[str, dict[str, dict[str, float]]] = {}
    spreads = {}
    by_user = ratings_by_user(train, split.test)
    for n in args.ns:
        cases = draw_visitors(by_user, n, args.users, seed)
        if not cases:
            print(f"  n={n}: no test user has {n + SPARE} test ratings", flush=True)
            continue
        started = time.perf_counter()
        row = visitors.setdefault(MOVIEREC_RECOMMEND, {})
        row[str(n)] = list_metrics(movierec_side.recommend(cases), cases)
        row[str(n)]["seconds"] = time.perf_counter() - started
        for label, scorer in scorers.items():
            started = time.perf_counter()
            metrics = list_metrics(ranked_lists(scorer(cases), cases), cases)
            metrics["seconds"] = time.perf_counter() - started
            visitors.setdefault(label, {})[str(n)] = metrics
        if movierec_side.columns:
            spreads[str(n)] = movierec_side.spreads(cases)
        print(f"  n={n}: " + ", ".join(
            f"{label} {rows[str(n)]['ndcg@10']:.3f}" for label, rows in visitors.items()
        ), flush=True)
    light = known_user_rows(recommender, train, split.test, ease_known, ease_fixed, cosine, counts)
    known_users = np.flatnonzero(np.diff(matrix.indptr) > 0)
    sample = sample_users(known_users, 300, np.random.default_rng([seed, 7]))
    if movierec_side.columns:
        known = QueryBatch.from_training(train, sample.astype(np.int32))
        queries = recommender.retrieval.retriever.query_embeddings(known)
        spreads["known users"] = {
            path: float(np.mean(
                (queries[:, cols] @ movierec_side.candidates[:, cols].T)[:, 1:].std(axis=1)
            ))
            for path, cols in movierec_side.columns.items() if cols.stop > cols.start
        }
    return {
        "models": where,
        "visitors": visitors,
        "light_users": light,
        "lambda": {"visitor_tuned": visitor_l2, "visitor_grid": visitor_grid,
                   "known_user_tuned": known_l2, "fixed": EASE_FIXED_LAMBDA},
        "path_spreads": spreads,
    }


def mean_over_seeds(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of every visitor cell and every light-user row."""
    first = next(iter(runs.values()))
    visitors = {
        label: {
            n: {metric: [float(np.mean(v)), float(np.std(v))] for metric, v in (
                (m, [run["visitors"][label][n][m] for run in runs.values()])
                for m in cells
            )}
            for n, cells in columns.items()
        }
        for label, columns in first["visitors"].items()
    }
    light = {
        label: {m: [float(np.mean(v)), float(np.std(v))] for m, v in (
            (m, [run["light_users"][label][m] for run in runs.values()]) for m in cells
        )}
        for label, cells in first["light_users"].items()
    }
    return {"visitors": visitors, "light_users": light}


def print_tables(summary: dict[str, Any], ns: Sequence[int], metric: str) -> None:
    """Rows = methods, columns = n (mean over seeds), then the light-user row."""
    def cell(values: list[float]) -> str:
        mean, std = values
        return f"{mean:.3f} ± {std:.3f}" if std else f"{mean:.3f}"

    header = ["method", *[f"n={n}" for n in ns]]
    rows = []
    for label, columns in summary["visitors"].items():
        rows.append([label, *[cell(columns[str(n)][metric]) if str(n) in columns else "-"
                              for n in ns]])
    print(f"\nVisitors: {metric} (mean ± std over seeds)")
    print(table(rows, header))
    light = summary["light_users"]
    if light:
        users = next(iter(light.values()))["users"][0]
        print(f"\nLight users (<= {LIGHT_MAX_TRAINING} training ratings, {users:.0f} users "
              f"a seed): {metric}")
        print(table([[label, cell(cells[metric])] for label, cells in light.items()],
                    ["method", metric]))


def build_parser() -> argparse.ArgumentParser:
    """The command line (``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k", help="ml-100k or a GroupLens directory")
    parser.add_argument("--seed", type=int, nargs="+", default=[42], help="split seeds (42)")
    parser.add_argument("--users", type=int, default=300, help="visitors per n (300)")
    parser.add_argument("--ns", type=int, nargs="+", default=list(NS), help="ratings given")
    parser.add_argument("--models", help="reuse these models (`movierec train --seed S`); "
                        "{seed} is replaced by each seed")
    parser.add_argument("--save-models", help="without --models: keep the trained models here")
    parser.add_argument("--smoke", action="store_true", help="1 epoch, 30 visitors per n")
    parser.add_argument("--out", type=Path, help="JSON path (default results/visitors-<data>.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns what it wrote to the JSON file."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.users = min(args.users, 30)
    if args.models and len(args.seed) > 1 and "{seed}" not in args.models:
        raise SystemExit("--models with several seeds needs {seed} in the path")
    dataset = load_dataset(args.data)
    if args.out is None:
        name = Path(args.data).name if args.data != "ml-100k" else "ml-100k"
        args.out = Path(__file__).parent / f"results/visitors-{name}.json"
    results: dict[str, Any] = {
        "data": dataset.describe(),
        "settings": vars(args) | {"out": str(args.out)},
        "protocol": __doc__,
    }
    runs: dict[str, dict[str, Any]] = {}
    for seed in args.seed:
        print(f"random 80/20 split, seed {seed}", flush=True)
        started = time.perf_counter()
        runs[str(seed)] = run_seed(dataset, seed, args)
        runs[str(seed)]["seconds"] = time.perf_counter() - started
        results["per_seed"] = runs
        results["mean"] = mean_over_seeds(runs)
        write_json(args.out, results)  # after every seed: a stopped run keeps what it measured
    print_tables(results["mean"], args.ns, "ndcg@10")
    print_tables(results["mean"], args.ns, "recall@10")
    print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
