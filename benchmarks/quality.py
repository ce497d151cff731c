"""Quality benchmark: movierec's models against the examples and public peers.

Same data, same splits, same metric code for everyone (movierec.evaluation):
three seeds of the random 80/20 split and the temporal split of a data set
(MovieLens 100K by default, any GroupLens directory with --data).

    python benchmarks/quality.py                 # full run (peers need .[peers])
    python benchmarks/quality.py --data ../shared/data/ml-latest-small-2016
    python benchmarks/quality.py --smoke         # seconds: tiny epochs, one seed
    python benchmarks/quality.py --visitors      # also the visitor protocol (visitors.py)

Four tables: retrieval (top-K), ranking (stars), the two stages together, and
item-to-item ("movies like this one", movierec.evaluation.item_to_item). Prints
mean ± std over the random seeds (temporal separately) and writes JSON to
benchmarks/results/quality-<data>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import movierec  # noqa: F401  (Keras backend)
from movierec.baselines import EASE, Popularity
from movierec.data import load_dataset, make_split
from movierec.data.training import TrainingSet
from movierec.evaluation.evaluate import (
    evaluate_ranker,
    evaluate_scores,
    evaluate_two_stage,
    retriever_scores,
)
from movierec.evaluation.item_to_item import evaluate_item_to_item
from movierec.metrics import mae, rmse
from movierec.models.base import unit_rows
from movierec.models.registry import DEFAULT_RANKER, DEFAULT_RETRIEVER
from movierec.ranking.blend import DEFAULT_STAR_WEIGHT
from movierec.retrieval.item_item import interaction_matrix
from movierec.workflow import train_model

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402
from reporting import refuse_other_ratings, write_json  # noqa: E402

RETRIEVAL_COLUMNS = ["recall@10", "ndcg@10", "recall@100", "coverage@10", "ndcg@10 (4+)",
                     "recall@10 (4+)"]
RANKING_COLUMNS = ["rmse", "mae"]
ITEM_COLUMNS = ["ndcg@10", "recall@10"]


def retrieval_metrics(score_fn, train, test) -> dict[str, float]:
    every = evaluate_scores(score_fn, train, test, ks=(10, 100))
    liked = evaluate_scores(score_fn, train, test, ks=(10,), min_rating=4.0)
    return {
        "recall@10": every["recall@10"],
        "ndcg@10": every["ndcg@10"],
        "recall@100": every["recall@100"],
        "coverage@10": every["coverage@10"],
        "ndcg@10 (4+)": liked["ndcg@10"],
        "recall@10 (4+)": liked["recall@10"],
    }


def fit(kind: str, name: str, dataset, split, seed: int, smoke: bool):
    """Train one movierec model the way ``movierec train`` does (workflow.train_model)."""
    settings = {"seed": seed}
    if smoke:
        settings["epochs"] = 1
    result = train_model(kind, name, dataset, split.train, settings=settings, verbose=0)
    return result.model, result.seconds


def run_split(dataset, split, seed: int, args) -> dict[str, dict[str, float]]:
    train = TrainingSet.build(dataset, split.train)
    test = split.test
    rows: dict[str, dict[str, float]] = {}

    def timed(label, fn):
        if args.only and not any(label.startswith(prefix) for prefix in args.only):
            return
        started = time.perf_counter()
        try:
            result = fn()
        except ImportError as error:
            print(f"  skipped {label}: {error}", file=sys.stderr)
            return
        result["seconds"] = time.perf_counter() - started
        rows[label] = result
        print(f"  {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)

    # Retrieval
    timed("retrieval/popularity", lambda: retrieval_metrics(Popularity(train), train, test))
    ease = {}

    def fit_ease():
        ease["model"] = EASE(train, seed=seed)
        return {**retrieval_metrics(ease["model"], train, test), "lambda": ease["model"].l2}

    timed("retrieval/EASE", fit_ease)
    if not args.smoke:
        for algorithm in ("als", "bpr"):
            timed(
                f"retrieval/implicit-{algorithm}",
                lambda a=algorithm: retrieval_metrics(
                    peers.implicit_scorer(train, a, seed), train, test
                ),
            )

        def fit_tuned_ials():
            score, chosen = peers.tuned_ials(train, seed)
            return {**retrieval_metrics(score, train, test), **chosen}

        timed("retrieval/implicit-als-tuned", fit_tuned_ials)
        for algorithm in args.cornac:
            timed(
                f"retrieval/cornac-{algorithm}",
                lambda a=algorithm: retrieval_metrics(
                    peers.cornac_scorer(train, a, seed), train, test
                ),
            )
    models = {}
    for name in ("example", DEFAULT_RETRIEVER):
        def go(name=name):
            model, seconds = fit("retrieval", name, dataset, split, seed, args.smoke)
            models[("retrieval", name)] = model
            return {**retrieval_metrics(retriever_scores(model, train), train, test),
                    "train_seconds": seconds}
        timed(f"retrieval/movierec-{name}", go)

    # Ranking
    actual = test["rating"].to_numpy(np.float32)
    timed("ranking/global-mean", lambda: {
        "rmse": rmse(np.full_like(actual, split.train["rating"].mean()), actual),
        "mae": mae(np.full_like(actual, split.train["rating"].mean()), actual)})
    surprise_algorithms = () if args.smoke else ("svd", "svd++", "knn-baseline")
    for algorithm in surprise_algorithms:
        def go(algorithm=algorithm):
            predicted = peers.surprise_predictions(split.train, test, algorithm, seed)
            return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual)}
        timed(f"ranking/surprise-{algorithm}", go)
    for name in ("example", DEFAULT_RANKER):
        def go(name=name):
            model, seconds = fit("ranking", name, dataset, split, seed, args.smoke)
            models[("ranking", name)] = model
            metrics = evaluate_ranker(model, train, test)
            return {"rmse": metrics["rmse"], "mae": metrics["mae"], "train_seconds": seconds}
        timed(f"ranking/movierec-{name}", go)

    # Item to item: similar movies for each test user's favourite training movie.
    retriever = models.get(("retrieval", DEFAULT_RETRIEVER))
    cosine = unit_rows(interaction_matrix(train).T.tocsr().toarray())
    counts = np.asarray(interaction_matrix(train).sum(axis=0)).ravel()
    similar = {
        "item-kNN cosine": lambda q: cosine[q] @ cosine.T,
        "popularity": lambda q: np.tile(counts, (len(q), 1)),
    }
    if "model" in ease:
        similar["EASE row"] = lambda q: ease["model"].weights[q]
    if retriever is not None:
        similar[f"movierec {DEFAULT_RETRIEVER}"] = retriever.similar_scores
    for label, fn in similar.items():
        timed(f"item-to-item/{label}", lambda fn=fn: evaluate_item_to_item(fn, train, test))

    # Two stages: default retrieval -> default ranking, NDCG@10 with 4+ stars relevant.
    ranker = models.get(("ranking", DEFAULT_RANKER))
    if retriever is not None and ranker is not None:
        orders = [("retrieval order only", 0.0)]
        orders += [(f"blend, star weight {w:g}", w) for w in args.star_weights]
        orders += [("predicted stars only", 1e6)]
        for label, weight in orders:
            timed(f"two-stage/{label}", lambda w=weight: {
                "ndcg@10 (4+)": evaluate_two_stage(
                    retriever, ranker, train, test, depth=args.depth, star_weight=w
                )["ndcg@10"]})
    return rows


def previous_rows(path: Path, data: dict, args) -> dict[str, dict[str, dict[str, float]]]:
    """The rows of an earlier run in ``path`` by seed (and ``"temporal"``), for ``--only``
    to merge new rows into; refused unless that run used the same data and seeds."""
    if not path.exists():
        sys.exit(f"--only merges into {path}, which does not exist: run the whole benchmark")
    earlier = json.loads(path.read_text())
    refuse_other_ratings(path, earlier["data"], data)
    if earlier["settings"]["seeds"] != args.seeds:
        sys.exit(f"--only: {path} used seeds {earlier['settings']['seeds']}, not {args.seeds}")
    rows = dict(earlier["random_per_seed"])
    if "temporal" in earlier and not args.no_temporal:
        # One run: its mean is the row (the std of one value is 0).
        rows["temporal"] = {
            system: {metric: mean for metric, (mean, _) in metrics.items()}
            for system, metrics in earlier["temporal"].items()
        }
    return rows


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, list[float]]]:
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for system, metrics in run.items():
            for metric, value in metrics.items():
                table[system][metric].append(value)
    return {
        system: {m: [float(np.mean(v)), float(np.std(v))] for m, v in metrics.items()}
        for system, metrics in table.items()
    }


def print_table(title: str, summary: dict, prefix: str, columns: list[str]) -> None:
    print(f"\n{title}")
    header = f"{'system':<34}" + "".join(f"{c:>18}" for c in columns + ["seconds"])
    print(header)
    print("-" * len(header))
    for system, metrics in summary.items():
        if not system.startswith(prefix):
            continue
        cells = []
        for column in columns + ["seconds"]:
            if column in metrics:
                mean, std = metrics[column]
                cells.append(f"{mean:>10.4f} ± {std:<5.3f}" if std else f"{mean:>18.4f}")
            else:
                cells.append(f"{'':>18}")
        print(f"{system.removeprefix(prefix):<34}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--no-temporal", action="store_true")
    parser.add_argument("--depth", type=int, default=200, help="candidates passed to ranking")
    parser.add_argument("--star-weights", type=float, nargs="+", default=[DEFAULT_STAR_WEIGHT],
                        help="blend weights of predicted stars to report (default: movierec's)")
    parser.add_argument("--cornac", nargs="*", default=["mult-vae"], choices=["mult-vae", "bivae"],
                        help="cornac autoencoder peers to run (needs torch; none: skip)")
    parser.add_argument("--smoke", action="store_true", help="one seed, 1 epoch, no peers")
    parser.add_argument("--out", type=Path, help="JSON path (default results/quality-<data>.json)")
    parser.add_argument("--only", nargs="+", metavar="PREFIX",
                        help="run only the systems whose label starts with one of these "
                        "(e.g. retrieval/implicit-als-tuned) and merge their rows into the "
                        "existing results file, keeping every other row")
    parser.add_argument("--visitors", action="store_true",
                        help="also run benchmarks/visitors.py on the same data and seeds "
                        "(trains its own models; writes results/visitors-<data>.json)")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.no_temporal = args.seeds[:1], True

    dataset = load_dataset(args.data)
    if args.out is None:
        name = Path(args.data).name if args.data != "ml-100k" else "ml-100k"
        args.out = Path(__file__).parent / f"results/quality-{name}.json"
    results: dict[str, object] = {"data": dataset.describe(), "settings": vars(args) | {
        "out": str(args.out)}}
    earlier = previous_rows(args.out, dataset.describe(), args) if args.only else {}
    random_runs = []
    for seed in args.seeds:
        print(f"random 80/20 split, seed {seed}", flush=True)
        split = make_split(dataset.ratings, "random", seed=seed, test_fraction=0.2)
        rows = run_split(dataset, split, seed, args)
        random_runs.append({**earlier.get(str(seed), {}), **rows})
        # Written after every split, so a long run that is stopped keeps what it measured.
        results["random"] = summarise(random_runs)
        results["random_per_seed"] = dict(zip(map(str, args.seeds), random_runs, strict=False))
        write_json(args.out, results)
    if not args.no_temporal:
        print("temporal split (latest 20% of ratings)", flush=True)
        split = make_split(dataset.ratings, "temporal", test_fraction=0.2)
        rows = run_split(dataset, split, args.seeds[0], args)
        results["temporal"] = summarise([{**earlier.get("temporal", {}), **rows}])

    for name in ("random", "temporal"):
        if name not in results:
            continue
        label = f"{name} split" + (f", mean ± std over seeds {args.seeds}" if name == "random"
                                   else "")
        print_table(f"Retrieval ({label}; watched excluded)", results[name], "retrieval/",
                    RETRIEVAL_COLUMNS)
        print_table(f"Ranking ({label}; stars)", results[name], "ranking/", RANKING_COLUMNS)
        print_table(f"Two-stage, retrieve {args.depth} -> rank -> 10 ({label})", results[name],
                    "two-stage/", ["ndcg@10 (4+)"])
        print_table(f"Item to item, favourite training movie -> 10 similar ({label})",
                    results[name], "item-to-item/", ITEM_COLUMNS)
    write_json(args.out, results)
    print(f"\nwrote {args.out}")
    if args.visitors:
        import visitors

        visitors.main(["--data", args.data, "--seed", *map(str, args.seeds),
                       *(["--smoke"] if args.smoke else [])])


if __name__ == "__main__":
    main()
