"""Peers at scale: popularity and tuned iALS (implicit) on a movierec Parquet data set.

    python benchmarks/scale_peers.py --data DIR          # e.g. a `movierec data expand` output
    python benchmarks/scale_peers.py --data DIR --models MODELS   # beside a streamed two-tower
    python benchmarks/scale_peers.py --smoke --data DIR  # seconds: a tiny grid

Needs implicit (``pip install -e ".[peers]"``). The split is the one ``movierec train
retrieval --stream`` makes (:class:`~movierec.data.splits.HashSplit`, ``--test-fraction``
0.2, ``--seed`` 42: the same test ratings), read through
:class:`~movierec.data.shards.ShardedTrainingSet`, so memory holds the encoded
vocabularies and the interaction matrix, never the table. ``--validation`` (0.1) of the
training ratings is held out to tune iALS: every combination of ``--factors``,
``--regularization`` and ``--alpha`` is fitted on the rest and scored by NDCG@10 on up to
``--max-users`` validation users (their other training ratings excluded); the best is
refitted on every training rating and evaluated on the test ratings by
:func:`~movierec.evaluation.evaluate.evaluate_retriever_on_shards`, the very function
(users drawn by the same seed, the same metric code) that scores the streamed
two-tower in its manifest, which also gives popularity on those users. With
``--models``, the saved streamed retriever's recorded metrics are put beside them when
its split and data are these. Prints a table, writes
benchmarks/results/scale-peers-<data>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice: its own threads only

import numpy as np  # noqa: E402
from reporting import table, write_json  # noqa: E402

RESULTS = Path(__file__).parent / "results"
KS = (10, 100)


class FactorRetriever:
    """A peer's factors behind the two calls the shard evaluation makes of a retriever."""

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray):
        self.users, self.items = user_factors, item_factors

    def candidate_embeddings(self) -> np.ndarray:
        """One row per movie index of the training set (row 0: the unknown movie)."""
        return self.items

    def query_embeddings(self, queries: Any) -> np.ndarray:
        """The factors of the queries' users (the evaluation's users are all known)."""
        return self.users[queries.user_index]


def interactions(train: Any, *parts: str):
    """The 0/1 users x movies CSR matrix of ``parts`` (indices as the training set's)."""
    from scipy.sparse import csr_matrix

    users, movies = [], []
    for user, movie, _ in train.chunks(*parts):
        users.append(np.asarray(user))
        movies.append(np.asarray(movie))
    user, movie = np.concatenate(users), np.concatenate(movies)
    matrix = csr_matrix(
        (np.ones(len(user), np.float32), (user, movie)), shape=(train.users.size, train.movies.size)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def fit_ials(matrix, factors: int, regularization: float, alpha: float, iterations: int, seed: int):
    """implicit's ALS (conjugate gradient) on ``matrix``; (user factors, item factors)."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors,
        regularization=regularization,
        alpha=alpha,
        iterations=iterations,
        random_state=seed,
    )
    model.fit(matrix, show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def validation_ndcg(
    retriever: FactorRetriever, train: Any, seen, max_users: int, seed: int
) -> dict[str, float]:
    """NDCG@10 and Recall@100 on up to ``max_users`` validation users, their ``seen``
    (train-part) movies excluded: movierec's metric functions, as on the test part."""
    from movierec.metrics import relevant_sets, sample_users, top_k_metrics
    from movierec.retrieval.topk import top_k

    users, movies = [], []
    for user, movie, _ in train.chunks("validation"):
        known = (np.asarray(user) > 0) & (np.asarray(movie) > 0)
        users.append(np.asarray(user)[known])
        movies.append(np.asarray(movie)[known])
    user, movie = np.concatenate(users), np.concatenate(movies)
    chosen = np.isin(user, sample_users(np.unique(user), max_users, np.random.default_rng(seed)))
    query_users, relevant = relevant_sets(user[chosen], movie[chosen])
    ranked = []
    for start in range(0, len(query_users), 256):
        batch = query_users[start : start + 256]
        scores = retriever.users[batch] @ retriever.items.T
        exclude = [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in batch]
        ranked.append(top_k(scores, max(KS), exclude)[1])
    lists = np.concatenate(ranked)
    return {
        "ndcg@10": top_k_metrics(lists, relevant, 10)["ndcg"],
        "recall@100": top_k_metrics(lists, relevant, 100)["recall"],
        "users": len(query_users),
    }


def saved_retriever(models: Path, data: Path, split: dict[str, Any]) -> dict[str, Any] | None:
    """The saved streamed retriever's recorded test metrics, when it used this data and split."""
    manifest = json.loads((models / "retrieval" / "manifest.json").read_text())
    recorded = manifest.get("split", {})
    same = Path(manifest.get("data_source", "")).resolve() == data.resolve() and all(
        recorded.get(key) == split.get(key) for key in ("method", "test_fraction", "seed")
    )
    if not same:
        print(f"note: {models} was trained on other data or another split; left out")
        return None
    metrics = manifest["metrics"]
    return {
        "model": manifest.get("model", "two-tower"),
        **{k: metrics.get(k) for k in ("users", "ndcg@10", "recall@10", "recall@100")},
        "training_seconds": manifest.get("training_seconds"),
        "peak_memory_mib": manifest.get("peak_memory_mib"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="movierec Parquet data set")
    parser.add_argument("--models", type=Path, help="a `train retrieval --stream` models dir")
    parser.add_argument("--seed", type=int, default=42, help="split seed, as `train` (42)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--validation", type=float, default=0.1, help="share tuned on")
    parser.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--regularization", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--alpha", type=float, nargs="+", default=[1.0, 10.0, 40.0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--max-users", type=int, default=2000, help="users scored (2000)")
    parser.add_argument("--smoke", action="store_true", help="one small factor size, 3 iterations")
    parser.add_argument("--out", type=Path, help="JSON path (default results/scale-peers-<data>)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.factors, args.regularization, args.alpha, args.iterations = [8], [0.1], [1.0, 10.0], 3

    from threadpoolctl import threadpool_limits

    from movierec.data.shards import ShardedTrainingSet
    from movierec.data.splits import HashSplit
    from movierec.evaluation.evaluate import evaluate_retriever_on_shards

    split = HashSplit(args.test_fraction, args.validation, args.seed)
    started = time.perf_counter()
    with threadpool_limits(1, "blas"), ShardedTrainingSet(args.data, split, progress=False) as t:
        prepared = time.perf_counter() - started
        tune_matrix = interactions(t, "train")
        grid = []
        for factors, reg, alpha in itertools.product(args.factors, args.regularization, args.alpha):
            fit_started = time.perf_counter()
            factors_ = fit_ials(tune_matrix, factors, reg, alpha, args.iterations, args.seed)
            fit_seconds = time.perf_counter() - fit_started
            scores = validation_ndcg(
                FactorRetriever(*factors_), t, tune_matrix, args.max_users, args.seed
            )
            row = {"factors": factors, "regularization": reg, "alpha": alpha, **scores}
            grid.append({**row, "fit_seconds": round(fit_seconds, 1)})
            print(
                f"iALS factors={factors} reg={reg:g} alpha={alpha:g}: validation "
                f"NDCG@10 {scores['ndcg@10']:.4f}, {fit_seconds:.1f} s",
                flush=True,
            )
        del tune_matrix
        best = max(grid, key=lambda r: r["ndcg@10"])
        fit_started = time.perf_counter()
        full = interactions(t, "train", "validation")
        final = FactorRetriever(
            *fit_ials(
                full,
                best["factors"],
                best["regularization"],
                best["alpha"],
                args.iterations,
                args.seed,
            )
        )
        final_seconds = time.perf_counter() - fit_started
        test = evaluate_retriever_on_shards(final, t, args.max_users, args.seed, KS)
        sizes = {
            "ratings": len(t) + t.count("test"),
            "training": len(t),
            "test": t.count("test"),
            "users": t.users.size - 1,
            "movies": t.movies.size - 1,
        }
        meta = t.meta
    split_info = {"method": "hash", "test_fraction": args.test_fraction, "seed": args.seed}
    rows = {
        "popularity": {
            "users": test["users"],
            **{f"{m}@{k}": test[f"popularity_{m}@{k}"] for m in ("ndcg", "recall") for k in KS},
        },
        "iALS (tuned)": {
            "users": test["users"],
            **{f"{m}@{k}": test[f"{m}@{k}"] for m in ("ndcg", "recall") for k in KS},
        },
    }
    if args.models:
        saved = saved_retriever(args.models, args.data, split_info)
        if saved:
            rows[f"movierec {saved['model']} (streamed)"] = saved
    columns = ["users", "ndcg@10", "recall@10", "recall@100"]
    print(
        f"\n{meta.get('name')}: {sizes['ratings']:,} ratings, {sizes['users']:,} users, "
        f"{sizes['movies']:,} movies; hash split seed {args.seed}, test {args.test_fraction}"
    )
    print(
        f"iALS chosen on validation: factors {best['factors']}, regularization "
        f"{best['regularization']:g}, alpha {best['alpha']:g} (NDCG@10 {best['ndcg@10']:.4f})"
    )
    print(table([[name, *(r.get(c) for c in columns)] for name, r in rows.items()], ["", *columns]))
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"node": platform.node(), "cpus": os.cpu_count()},
        "data": {"path": str(args.data), "name": meta.get("name"), "source": meta.get("source")},
        "sizes": sizes,
        "split": {**split_info, "validation_fraction": args.validation},
        "settings": {
            "iterations": args.iterations,
            "max_users": args.max_users,
            "smoke": args.smoke,
        },
        "tuning": {"grid": grid, "chosen": best},
        "test": rows,
        "seconds": {
            "prepare_shards": round(prepared, 1),
            "tuning_fits": round(sum(r["fit_seconds"] for r in grid), 1),
            "final_fit": round(final_seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }
    name = str(meta.get("name", args.data.name)) + ("-smoke" if args.smoke else "")
    write_json(args.out or RESULTS / f"scale-peers-{name}.json", result)


if __name__ == "__main__":
    main()
