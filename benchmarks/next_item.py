"""Next-item benchmark: "what next", as the sequential-recommendation literature measures it.

Protocol (issue 20, part 4): leave-last-one. Each user's latest rating (by timestamp, ties
broken by movie id: ``make_split(..., "leave-last-n", n=1)``) is the test item; everything
before it trains every system. Each test user gets one list over the full catalogue with
their training movies excluded; reported are NDCG@10 and HR@10 (hit rate: the test item in
the top 10), as SASRec papers report them (e.g. Klenitskiy & Vasilev, RecSys 2023), from
movierec's metric code (:func:`movierec.evaluation.evaluate.evaluate_scores`) for every row.

Rows:

- ``movierec two-tower``: the default retriever, trained as ``movierec train retrieval``
  trains it (:func:`movierec.workflow.train_model`) on the training part.
- ``EASE``: exact EASE, ``lambda`` chosen on held-out training ratings.
- ``implicit iALS, tuned``: factors, regularization and alpha chosen on held-out training
  ratings (``peers.tuned_ials``); needs ``pip install -e ".[peers]"``.
- ``popularity``: training rating counts.
- ``SASRec (RecBole)``, with ``--sasrec-python PY``: RecBole 1.2.1's SASRec trained by
  ``benchmarks/sasrec_peer.py`` under the interpreter ``PY`` (a venv that has RecBole;
  see that script), on the same training ratings; its top-100 lists are scored here by
  the same metric code.

    python benchmarks/next_item.py                     # ML-100K, seed 42
    python benchmarks/next_item.py --data ../shared/data/ml-latest-small-2016
    python benchmarks/next_item.py --sasrec-python /path/to/recbole-venv/bin/python
    python benchmarks/next_item.py --smoke             # seconds: 1 epoch, no tuned peers
    python benchmarks/next_item.py --sasrec-inputs DIR   # SASRec trained apart: its inputs,
    PY benchmarks/sasrec_peer.py --train DIR/train.csv --users DIR/users.txt --out DIR/r.json ...
    python benchmarks/next_item.py --sasrec-ranked DIR/r.json  # then its lists scored here

Prints a table and writes ``benchmarks/results/next-item-<data>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import movierec  # noqa: F401  (Keras backend)
from movierec.baselines import EASE, Popularity
from movierec.data import load_dataset, make_split
from movierec.data.training import TrainingSet
from movierec.evaluation.evaluate import evaluate_scores, retriever_scores
from movierec.models.registry import DEFAULT_RETRIEVER
from movierec.workflow import train_model

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402
from reporting import refuse_other_ratings, table, write_json  # noqa: E402

COLUMNS = ["ndcg@10", "hit_rate@10", "ndcg@100", "hit_rate@100"]
SASREC_SCRIPT = Path(__file__).parent / "sasrec_peer.py"


def metrics(score_fn: Callable[[np.ndarray], np.ndarray], train: TrainingSet, test) -> dict:
    """NDCG and hit rate at 10 and 100 of one test item per user, training movies excluded."""
    every = evaluate_scores(score_fn, train, test, ks=(10, 100))
    return {"users": every["users"], **{column: every[column] for column in COLUMNS}}


def ranked_scores(ranked: dict[str, list[str]], train: TrainingSet) -> Callable:
    """A score function from external top-N lists (user id -> movie ids, best first): the
    listed movies score N, N-1, ..., 1 and every other movie 0, so the metric code ranks
    the list as given."""
    rows = {}
    for user, movies in ranked.items():
        row = np.zeros(train.movies.size, np.float32)
        index = train.movies.lookup(movies)
        known = index > 0  # a movie the training set does not know cannot be scored
        row[index[known]] = (len(movies) - np.arange(len(movies), dtype=np.float32))[known]
        rows[user] = row
    empty = np.zeros(train.movies.size, np.float32)

    def score(user_index: np.ndarray) -> np.ndarray:
        return np.stack([rows.get(train.users.id_of(int(u)), empty) for u in user_index])

    return score


def run_sasrec(python: str, split, seed: int, epochs: int) -> dict:
    """Train SASRec in ``python`` (a RecBole venv) on the training ratings; its ranked.json
    (``ranked``: top-100 lists, ``settings``: what it ran)."""
    with tempfile.TemporaryDirectory(prefix="movierec-sasrec-") as tmp:
        directory = Path(tmp)
        write_sasrec_inputs(split, directory)
        command = [
            python,
            str(SASREC_SCRIPT),
            "--train",
            str(directory / "train.csv"),
            "--users",
            str(directory / "users.txt"),
            "--out",
            str(directory / "ranked.json"),
            "--seed",
            str(seed),
            "--epochs",
            str(epochs),
        ]
        subprocess.run(command, check=True)
        return json.loads((directory / "ranked.json").read_text())


def write_sasrec_inputs(split, directory: Path) -> None:
    """``train.csv`` and ``users.txt`` as ``sasrec_peer.py`` reads them."""
    split.train.to_csv(directory / "train.csv", index=False)
    users = sorted(set(split.test["user_id"].astype(str)))
    (directory / "users.txt").write_text("\n".join(users) + "\n")


def sasrec_row(ranked: dict, train: TrainingSet, test) -> dict:
    """The metrics of a ranked.json's lists, with the settings it was trained under."""
    return {
        **metrics(ranked_scores(ranked["ranked"], train), train, test),
        "sasrec_settings": ranked.get("settings", {}),
    }


def previous_rows(path: Path, data: dict, args) -> dict[str, dict[str, dict]]:
    """The rows of an earlier run in ``path`` by seed, for ``--only`` to merge new rows
    into; refused unless that run used the same data and seeds."""
    if not path.exists():
        sys.exit(f"--only merges into {path}, which does not exist: run the whole benchmark")
    earlier = json.loads(path.read_text())
    refuse_other_ratings(path, earlier["data"], data)
    if earlier["settings"]["seed"] != str(args.seed):
        sys.exit(f"--only: {path} used seeds {earlier['settings']['seed']}, not {args.seed}")
    return earlier["per_seed"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[42],
        help="model seeds (the split itself has no randomness)",
    )
    parser.add_argument("--sasrec-python", help="python of a venv with RecBole 1.2.1")
    parser.add_argument("--sasrec-epochs", type=int, default=50)
    parser.add_argument(
        "--sasrec-ranked",
        type=Path,
        help="score the ranked.json of an earlier sasrec_peer.py run on this "
        "split (train it apart, e.g. with --max-minutes) instead of training",
    )
    parser.add_argument(
        "--sasrec-inputs",
        type=Path,
        help="write this split's train.csv and users.txt for sasrec_peer.py "
        "into this folder and stop",
    )
    parser.add_argument("--smoke", action="store_true", help="1 epoch, no tuned peers")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PREFIX",
        help="run only the systems whose label starts with one of these (e.g. "
        "SASRec) and merge their rows into the existing results file",
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default results/next-item-<data>.json)"
    )
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data)
    name = Path(args.data).name if args.data != "ml-100k" else "ml-100k"
    out = args.out or Path(__file__).parent / f"results/next-item-{name}.json"
    split = make_split(dataset.ratings, "leave-last-n", n=1)
    train = TrainingSet.build(dataset, split.train)
    test = split.test
    if args.sasrec_inputs:
        args.sasrec_inputs.mkdir(parents=True, exist_ok=True)
        write_sasrec_inputs(split, args.sasrec_inputs)
        print(f"wrote {args.sasrec_inputs}/train.csv and users.txt")
        return {}
    per_seed: dict[str, dict[str, dict]] = {}
    earlier = previous_rows(out, dataset.describe(), args) if args.only else {}
    for seed in args.seed:
        rows: dict[str, dict] = dict(earlier.get(str(seed), {}))

        def timed(label: str, fn: Callable[[], dict], rows=rows) -> None:
            if args.only and not any(label.startswith(prefix) for prefix in args.only):
                return
            started = time.perf_counter()
            try:
                result = fn()
            except ImportError as error:
                print(f"  skipped {label}: {error}", file=sys.stderr)
                return
            rows[label] = {**result, "seconds": time.perf_counter() - started}
            print(
                f"  {label}: ndcg@10 {result['ndcg@10']:.4f}, "
                f"hit_rate@10 {result['hit_rate@10']:.4f}",
                flush=True,
            )

        print(f"leave-last-one, model seed {seed}", flush=True)
        settings = {"seed": seed, **({"epochs": 1} if args.smoke else {})}

        def two_tower(settings=settings) -> dict:
            fitted = train_model(
                "retrieval", DEFAULT_RETRIEVER, dataset, split.train, settings=settings, verbose=0
            )
            return metrics(retriever_scores(fitted.model, train), train, test)

        timed(f"movierec {DEFAULT_RETRIEVER}", two_tower)
        timed("EASE", lambda seed=seed: metrics(EASE(train, seed=seed), train, test))
        if not args.smoke:

            def ials(seed=seed) -> dict:
                score, chosen = peers.tuned_ials(train, seed)
                return {**metrics(score, train, test), **chosen}

            timed("implicit iALS, tuned", ials)
        timed("popularity", lambda: metrics(Popularity(train), train, test))
        if args.sasrec_ranked:
            timed(
                "SASRec (RecBole)",
                lambda: sasrec_row(json.loads(args.sasrec_ranked.read_text()), train, test),
            )
        elif args.sasrec_python:
            epochs = 1 if args.smoke else args.sasrec_epochs
            timed(
                "SASRec (RecBole)",
                lambda seed=seed, epochs=epochs: sasrec_row(
                    run_sasrec(args.sasrec_python, split, seed, epochs), train, test
                ),
            )
        per_seed[str(seed)] = rows
        results = {
            "data": dataset.describe(),
            "protocol": "leave-last-one",
            "test_users": int(test["user_id"].nunique()),
            "settings": {k: str(v) for k, v in vars(args).items()},
            "per_seed": per_seed,
        }
        write_json(out, results)  # after every seed: a stopped run keeps what it measured

    systems = list(next(iter(per_seed.values())))
    body = []
    for system in systems:
        values = [
            [per_seed[s][system][c] for s in per_seed if system in per_seed[s]] for c in COLUMNS
        ]
        body.append([system, *[float(np.mean(v)) for v in values]])
    print(
        f"\nLeave-last-one on {name} ({results['test_users']} test users; mean over seeds "
        f"{args.seed})"
    )
    print(table(body, ["system", *COLUMNS]))
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
