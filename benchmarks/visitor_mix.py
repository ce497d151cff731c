"""What a history-length-dependent mix of the two-tower's paths would give visitors.

Post hoc, from a saved model (no retraining): the visitor query vectors are built as
``Recommender.recommend(None, extra_ratings=...)`` builds them (same visitors, same draw
as ``benchmarks/visitors.py``), cut into the deep part (with the per-movie bias), the
item-item path and the popularity path, and the three score vectors are recombined:

- ``share s``: the item-item scores rescaled, per visitor, so that their spread over the
  catalogue is ``s`` times the deep part's (the served model fixes the scale on known
  users, where the item-item spread is ``item_item_share`` = 0.15 of the deep one; a
  visitor's item-item spread grows with n, the deep part's does not);
- ``pop g``: the popularity path rescaled to spread ``g`` times the deep part's (served:
  ``recent_popularity_weight`` = 0.05);
- ``EASE λ(n)``: exact EASE fold-in with, at each n, the λ the visitor validation of
  ``visitors.tune_visitor_lambda`` prefers at that n (held-out training users, not the
  test), alone or added to the deep part (EASE spread = share x the deep part's);
- ``stars``: the item-item path's history rows weighted by ``stars - 2.5`` instead of 1
  (the served path reads the history as a binary row, so a 1-star rating pulls movies
  like it up).

Rows = settings, columns = n, NDCG@10 of the retrieval order (no ranking stage; with
``--metric "ndcg@10 (4+)"`` only 4+ star test ratings are relevant). The
grid is scored on all visitors of one seed; a setting chosen here should be checked on
another seed's model (``--models DIR`` with ``{seed}``) before it is kept.

    python benchmarks/visitor_mix.py --models /tmp/visit-models-{seed} --seed 42 43
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

import movierec  # noqa: F401  (Keras backend)
from movierec.data import load_dataset, make_split
from movierec.pipeline import Recommender

sys.path.insert(0, str(Path(__file__).parent))
import visitors as protocol  # noqa: E402
from reporting import table, write_json  # noqa: E402

SHARES = (0.0, 0.15, 0.5, 1.0, 2.0, 4.0)
POPULARITY = (0.0, 0.05, 0.25, 0.5, 1.0)


def path_scores(
    side: protocol.MovierecVisitor, cases: list[protocol.Visitor], stars: bool
) -> dict[str, np.ndarray]:
    """(visitors, movies) scores of the deep part (bias included), the item-item path
    (binary rows, or ``stars - 2.5`` weights) and the popularity path, as served."""
    queries = side.query_vectors(cases)
    candidates, cols = side.candidates, side.columns
    bias = candidates[:, side.bias][None, :]  # the column after the network's paths
    deep = queries[:, cols["deep"]] @ candidates[:, cols["deep"]].T + bias
    network = side.recommender.retrieval.retriever.network
    if stars:
        table_rows = np.asarray(network.item_query_table.numpy())
        weights = protocol.visitor_rows(cases, len(table_rows), "stars")
        item_query = weights @ table_rows * float(network.item_scale.numpy())
    else:
        item_query = queries[:, cols["item_item"]]
    item = item_query @ candidates[:, cols["item_item"]].T
    popularity = queries[:, cols["popularity"]] @ candidates[:, cols["popularity"]].T
    return {"deep": deep, "item": item, "popularity": popularity}


def spread(scores: np.ndarray) -> np.ndarray:
    """(visitors, 1) standard deviation of each row over the catalogue (movie 0 left out)."""
    return np.maximum(scores[:, 1:].std(axis=1, keepdims=True), 1e-12)


def mix(paths: dict[str, np.ndarray], share: float | None, pop: float | None) -> np.ndarray:
    """Deep + item-item at spread ``share`` x deep + popularity at ``pop`` x deep
    (``None``: that path as served)."""
    deep_spread = spread(paths["deep"])
    item = paths["item"]
    if share is not None:
        item = item / spread(item) * share * deep_spread
    popularity = paths["popularity"]
    if pop is not None:
        popularity = popularity / spread(popularity) * pop * deep_spread
    return paths["deep"] + item + popularity


def run_seed(dataset, seed: int, args) -> dict[str, dict[str, float]]:
    """NDCG@10 of every setting at every n for one seed's saved model."""
    split = make_split(dataset.ratings, "random", seed=seed, test_fraction=0.2)
    directory = str(args.models).replace("{seed}", str(seed))
    side = protocol.MovierecVisitor(Recommender.load(directory))
    if len(side.train) != len(split.train):
        raise SystemExit(f"{directory}: not a model of seed {seed}'s train part")
    by_user = protocol.ratings_by_user(side.train, split.test)
    matrix = protocol.interaction_matrix(side.train)
    gram = protocol.gram_matrix(matrix)
    chosen, grid = protocol.tune_visitor_lambda(side.train, args.ns, seed, args.users)
    ratio = chosen / max(grid, key=lambda l2: (grid[l2]["mean"], l2))  # Gram size ratio
    rows: dict[str, dict[str, float]] = {}
    for n in args.ns:
        cases = protocol.draw_visitors(by_user, n, args.users, seed)
        # EASE with the λ that the visitor validation prefers at this n (not the test).
        best = max(grid, key=lambda l2: (grid[l2].get(str(n), 0.0), l2))
        ease = protocol.fold_in(protocol.ease_weights(gram, best * ratio).astype(np.float32))
        ease_scores = ease(cases)
        deep = path_scores(side, cases, False)
        shares = (None, 4.0, 2.0, 1.0)
        for label, share in ((f"EASE λ(n) + deep, share {s:g}" if s else "EASE λ(n) only", s)
                             for s in shares):
            if share is None:
                scores = ease_scores
            else:
                scores = mix({"deep": deep["deep"], "item": ease_scores,
                              "popularity": deep["popularity"]}, share, 0.0)
            metrics = protocol.list_metrics(protocol.ranked_lists(scores, cases), cases)
            rows.setdefault(label, {})[str(n)] = metrics[args.metric]
        print(f"  seed {seed}, n={n}: EASE λ(n) = {best * ratio:.0f}", flush=True)
        for stars in (False, True):
            paths = path_scores(side, cases, stars)
            settings: list[tuple[str, float | None, float | None]] = [("served", None, None)]
            settings += [(f"share {s:g}, pop {g:g}", s, g) for s in SHARES for g in POPULARITY]
            settings += [("item-item only", None, None), ("popularity path only", None, None)]
            for label, share, pop in settings:
                if label == "item-item only":
                    scores = paths["item"]
                elif label == "popularity path only":
                    if stars:
                        continue  # the same as without
                    scores = paths["popularity"]
                else:
                    scores = mix(paths, share, pop)
                ranked = protocol.ranked_lists(scores, cases)
                name = label + (", stars" if stars else "")
                metrics = protocol.list_metrics(ranked, cases)
                rows.setdefault(name, {})[str(n)] = metrics[args.metric]
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Score the grid for every seed; print rows = settings, columns = n."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--seed", type=int, nargs="+", default=[42])
    parser.add_argument("--models", required=True, help="saved models; {seed} is replaced")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--ns", type=int, nargs="+", default=list(protocol.NS))
    parser.add_argument("--metric", default="ndcg@10", choices=["ndcg@10", "ndcg@10 (4+)"],
                        help="ndcg@10 (all test ratings relevant) or ndcg@10 (4+)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.data)
    name = Path(args.data).name if args.data != "ml-100k" else "ml-100k"
    suffix = "-liked" if args.metric != "ndcg@10" else ""
    out = args.out or Path(__file__).parent / f"results/visitor-mix-{name}{suffix}.json"
    runs = {}
    for seed in args.seed:
        runs[str(seed)] = run_seed(dataset, seed, args)
        header = ["setting", *[f"n={n}" for n in args.ns], "mean"]
        body = [[label, *[cells[str(n)] for n in args.ns], float(np.mean(list(cells.values())))]
                for label, cells in runs[str(seed)].items()]
        body.sort(key=lambda r: -r[-1])
        print(f"\nseed {seed}: {args.metric} of the retrieval order, best mean first")
        print(table(body, header))
        write_json(out, {"settings": vars(args) | {"out": str(out)}, "per_seed": runs})
    print(f"\nwrote {out}")
    return runs


if __name__ == "__main__":
    main()
