"""One two-tower fit with chosen settings on one split: NDCG@10 (all and 4+ relevant).

For probing a setting before a full ``quality.py`` run (the figures in the closing notes
of the temporal-split investigation came from it), e.g.:

    python benchmarks/two_tower_probe.py --split temporal --set item_item_rank=2000

``--item-to-item`` adds the item-to-item NDCG@10 of ``similar``, and ``--similar-set``
scores further ``similar`` settings on the same fit (they act after training), e.g.
``--item-to-item --similar-set similar_rating_weight=0.25``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from movierec.data import load_dataset, make_split
from movierec.data.training import TrainingSet
from movierec.evaluation.evaluate import evaluate_scores, retriever_scores
from movierec.evaluation.item_to_item import evaluate_item_to_item
from movierec.retrieval.two_tower import TwoTowerRetriever

sys.path.insert(0, str(Path(__file__).parent))
from reporting import write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--split", default="random", choices=["random", "temporal"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="a two-tower setting (repeatable)")
    parser.add_argument("--item-to-item", action="store_true",
                        help="also score similar on the item-to-item measure")
    parser.add_argument("--similar-set", action="append", default=[], metavar="KEY=JSON",
                        help="a further similar setting to score on the same fit (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    settings = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    dataset = load_dataset(args.data)
    split = make_split(dataset.ratings, args.split, seed=args.seed, test_fraction=0.2)
    train = TrainingSet.build(dataset, split.train)
    started = time.perf_counter()
    model = TwoTowerRetriever(**{"seed": args.seed, **settings})
    history = model.fit(train, verbose=0)
    seconds = time.perf_counter() - started
    scores = retriever_scores(model, train)
    every = evaluate_scores(scores, train, split.test, ks=(10,))
    liked = evaluate_scores(scores, train, split.test, ks=(10,), min_rating=4.0)
    result = {
        "data": args.data, "split": args.split, "seed": args.seed, "settings": settings,
        "seconds": round(seconds, 1), "item_item_lambda": history.get("item_item_lambda"),
        "ndcg@10": round(every["ndcg@10"], 4), "ndcg@10 (4+)": round(liked["ndcg@10"], 4),
    }
    if args.item_to_item:
        variants = [{}] + [
            {k: json.loads(v)} for k, v in (a.split("=", 1) for a in args.similar_set)
        ]
        defaults = {k: model.settings[k] for v in variants for k in v}
        result["item_to_item_ndcg@10"] = {}
        for variant in variants:
            model.settings.update({**defaults, **variant})
            label = json.dumps(variant) if variant else "defaults"
            found = evaluate_item_to_item(model.similar_scores, train, split.test)
            result["item_to_item_ndcg@10"][label] = round(found["ndcg@10"], 4)
        model.settings.update(defaults)
    print(json.dumps(result))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
