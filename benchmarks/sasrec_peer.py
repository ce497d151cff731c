"""SASRec from RecBole 1.2.1, the sequential peer of ``benchmarks/next_item.py``.

Runs under its own interpreter (a venv with RecBole, never the project's), called by
``next_item.py --sasrec-python PY`` as::

    PY benchmarks/sasrec_peer.py --train train.csv --users users.txt --out ranked.json \\
        --seed 42 --epochs 50

``train.csv`` has the columns ``user_id,movie_id,rating,timestamp`` (the training part of
the leave-last-one split); ``users.txt`` one user id a line. ``ranked.json`` gets
``{"ranked": {user_id: [movie_id, ... 100, best first]}, "settings": {...}}``, each
user's training movies excluded.

What it does:

1. Writes the training ratings as RecBole atomic files (``.inter``: ``user_id:token
   item_id:token rating:float timestamp:float``) to a temporary folder. The timestamp
   written is each rating's position in its user's history, ordered by (timestamp,
   movie id) as ``make_split`` orders it: RecBole keeps timestamps as float32 (about a
   minute's resolution at today's epoch seconds) and sorts ties in no stated order, so
   real seconds could reorder a history.
2. Trains SASRec with full cross-entropy (``loss_type CE``, no negative sampling) on
   the CPU. Early stopping uses RecBole's own leave-one-out inside the training
   histories (``split LS valid_only``, order ``TO``, full-catalogue ranking): each
   user's last training rating validates, NDCG@10 picks the epoch, ``--epochs`` is the
   most it runs, ``--patience`` validation rounds without a gain stop it (and
   ``--max-minutes``, if given, after the epoch that passes it).
3. Reloads the best epoch's weights and scores the whole catalogue for each listed user
   from their WHOLE training history (the validation rating included, as the other
   systems see it), last ``max_seq_length`` ratings, drops their training movies and
   writes the top 100.

RecBole's log, tensorboard folder and checkpoints stay in the temporary folder (the
process works there); nothing is written into the repository.

The venv (versions known to work, pinned in ``benchmarks/sasrec-requirements.txt``;
RecBole 1.2.1 needs numpy<2, pandas<2.3 and setuptools<81; torch is the CPU build)::

    python3.11 -m venv /work/venv-recbole
    /work/venv-recbole/bin/pip install -r benchmarks/sasrec-requirements.txt

torch 2.6 and later default ``torch.load`` to ``weights_only=True``, under which
RecBole's own checkpoint (it pickles the config) does not load; this script reads the
checkpoint itself with ``weights_only=False`` (a file RecBole wrote, not one from outside).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

TOP_N = 100
DATASET = "movierec"


class OutOfTime(Exception):
    """Raised after an epoch once ``--max-minutes`` have passed: training stops there."""


def fail(message: str) -> None:
    """Stop with a clear message and a non-zero exit, no traceback."""
    print(f"sasrec_peer: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_train(path: Path) -> dict[str, list[tuple[float, str, str]]]:
    """Each user's training ratings as (timestamp, movie id, rating), oldest first."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            needed = {"user_id", "movie_id", "rating", "timestamp"}
            missing = needed - set(reader.fieldnames or [])
            if missing:
                fail(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
            histories: dict[str, list[tuple[float, str, str]]] = {}
            for line, row in enumerate(reader, start=2):
                try:
                    stamp, rating = float(row["timestamp"]), float(row["rating"])
                except ValueError:
                    fail(f"{path}:{line}: timestamp and rating must be numbers")
                user, movie = row["user_id"].strip(), row["movie_id"].strip()
                if not user or not movie or any(c in user + movie for c in "\t "):
                    fail(f"{path}:{line}: ids must be non-empty, without spaces or tabs")
                histories.setdefault(user, []).append((stamp, movie, str(rating)))
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")
    if not histories:
        fail(f"{path} has no ratings")

    def movie_key(movie: str) -> tuple[int, int | str]:
        return (0, int(movie)) if movie.isdigit() else (1, movie)  # numeric ids as numbers

    for history in histories.values():
        history.sort(key=lambda entry: (entry[0], movie_key(entry[1])))
    return histories


def write_atomic_files(histories: dict, folder: Path) -> None:
    """RecBole's ``<dataset>.inter``, the position in each history as the timestamp."""
    folder.mkdir(parents=True)
    with (folder / f"{DATASET}.inter").open("w") as handle:
        handle.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for user, history in histories.items():
            for position, (_, movie, rating) in enumerate(history):
                handle.write(f"{user}\t{movie}\t{rating}\t{position}\n")


def settings_for(args: argparse.Namespace, data_path: Path, work: Path) -> dict:
    """RecBole's configuration: SASRec, CE loss, CPU, leave-one-out validation."""
    return {
        "data_path": str(data_path),
        "checkpoint_dir": str(work / "saved"),
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "device": "cpu",
        "worker": 0,
        "show_progress": False,
        "state": "INFO",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_seq_length,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": args.dropout,
        "attn_dropout_prob": args.dropout,
        "hidden_act": "gelu",
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "learning_rate": 1e-3,
        "train_batch_size": args.batch_size,
        "eval_batch_size": 1024,
        "epochs": args.epochs,
        "stopping_step": args.patience,
        "eval_step": 1,
        "eval_args": {
            "split": {"LS": "valid_only"},
            "group_by": "user",
            "order": "TO",
            "mode": "full",
        },
        "metrics": ["NDCG", "Hit"],
        "topk": [10],
        "valid_metric": "NDCG@10",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--users", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=50, help="most epochs (early stopping)")
    parser.add_argument(
        "--patience",
        type=int,
        default=5,
        help="validation rounds without a better NDCG@10 before stopping",
    )
    parser.add_argument("--max-seq-length", type=int, default=50)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="rank from this RecBole checkpoint of an earlier run on the same train.csv and "
        "settings (copied from its saved/ folder) instead of training",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop training after the epoch that passes this (best epoch kept)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.patience < 1 or args.max_seq_length < 2:
        fail("--epochs and --patience must be at least 1, --max-seq-length at least 2")
    if not 0.0 <= args.dropout < 1.0 or args.batch_size < 1 or args.threads < 1:
        fail("--dropout must be in [0, 1), --batch-size and --threads at least 1")

    histories = read_train(args.train)
    try:
        users = [line.strip() for line in args.users.read_text().splitlines() if line.strip()]
    except OSError as error:
        fail(f"cannot read {args.users}: {error.strerror}")
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            fail(f"--checkpoint {args.checkpoint} is not a file")
        args.checkpoint = args.checkpoint.resolve()  # read after the move to the temporary folder
    if not args.out.parent.is_dir():
        fail(f"the folder of --out ({args.out.parent}) does not exist")

    try:
        import numpy as np
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.model.sequential_recommender import SASRec
        from recbole.trainer import Trainer
        from recbole.utils import init_logger, init_seed
    except ImportError as error:
        fail(f"{error}; this script needs a venv with RecBole 1.2.1 (see its docstring)")

    torch.set_num_threads(args.threads)
    # a stopped run (SIGTERM) still removes its temporary folder
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="movierec-recbole-") as tmp:
        work = Path(tmp)
        write_atomic_files(histories, work / "data" / DATASET)
        here = Path.cwd()
        os.chdir(work)  # RecBole writes ./log and ./log_tensorboard
        sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from the command line
        try:
            config = Config(
                model="SASRec", dataset=DATASET, config_dict=settings_for(args, work / "data", work)
            )
            init_seed(config["seed"], config["reproducibility"])
            init_logger(config)
            dataset = create_dataset(config)
            train_data, valid_data, _ = data_preparation(config, dataset)
            init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
            model = SASRec(config, train_data.dataset).to(config["device"])
            trainer = Trainer(config, model)
            curve: list[float] = []

            def after_epoch(epoch: int, score: float) -> None:
                curve.append(float(score))
                minutes = (time.perf_counter() - started) / 60
                if args.max_minutes is not None and minutes > args.max_minutes:
                    raise OutOfTime  # the best epoch's checkpoint is already saved

            out_of_time = False
            if args.checkpoint is None:
                try:
                    trainer.fit(
                        train_data,
                        valid_data,
                        saved=True,
                        show_progress=False,
                        callback_fn=after_epoch,
                    )
                except OutOfTime:
                    out_of_time = True
            # RecBole's own file (it pickles the config): weights_only=False, see the docstring
            checkpoint = torch.load(
                args.checkpoint or trainer.saved_model_file, map_location="cpu", weights_only=False
            )
            best_score = float(checkpoint["best_valid_score"])
            model.load_state_dict(checkpoint["state_dict"])
            best_epoch = int(checkpoint["epoch"])
            ranked, unknown = rank(model, dataset, histories, users, args.max_seq_length, np, torch)
        finally:
            os.chdir(here)
    seconds = time.perf_counter() - started

    settings = {
        "library": "RecBole 1.2.1 SASRec",
        "torch": torch.__version__,
        **{
            key: value
            for key, value in settings_for(args, Path("."), Path(".")).items()
            if key
            not in (
                "data_path",
                "checkpoint_dir",
                "device",
                "worker",
                "show_progress",
                "state",
                "load_col",
            )
        },
        "epochs_run": len(curve) if args.checkpoint is None else None,
        "from_checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "best_epoch": best_epoch + 1,
        "stopped_early": len(curve) < args.epochs and not out_of_time,
        "stopped_by_time_limit": out_of_time,
        "max_minutes": args.max_minutes,
        "valid_ndcg@10_best": float(best_score),
        "valid_ndcg@10_per_epoch": [round(score, 4) for score in curve],
        "users_without_history": unknown,
        "seconds": round(seconds, 1),
        "threads": args.threads,
    }
    temporary = args.out.with_name(f".{args.out.name}.tmp")
    temporary.write_text(json.dumps({"ranked": ranked, "settings": settings}))
    os.replace(temporary, args.out)  # never a half-written file
    print(
        f"sasrec_peer: {len(curve)} epochs (best {best_epoch + 1}, valid NDCG@10 "
        f"{best_score:.4f}), {seconds:.0f} s, wrote {args.out}",
        file=sys.stderr,
    )


def rank(
    model, dataset, histories: dict, users: list[str], max_length: int, np, torch, batch: int = 256
) -> tuple[dict[str, list[str]], int]:
    """Top ``TOP_N`` movies for each user from their whole history, its movies excluded.

    Users without training ratings get an empty list (counted in the second value)."""
    model.eval()
    token_of = dataset.field2id_token["item_id"]  # index -> token; index 0 is padding
    index_of = dataset.field2token_id["item_id"]
    ranked: dict[str, list[str]] = {}
    known = [user for user in users if user in histories]
    for user in users:
        if user not in histories:
            ranked[user] = []
    with torch.no_grad():
        for start in range(0, len(known), batch):
            chunk = known[start : start + batch]
            sequences = np.zeros((len(chunk), max_length), np.int64)  # right padding
            lengths = np.zeros(len(chunk), np.int64)
            for row, user in enumerate(chunk):
                items = [index_of[movie] for _, movie, _ in histories[user]][-max_length:]
                sequences[row, : len(items)] = items
                lengths[row] = len(items)
            scores = model.full_sort_predict(
                {
                    model.ITEM_SEQ: torch.from_numpy(sequences),
                    model.ITEM_SEQ_LEN: torch.from_numpy(lengths),
                }
            ).numpy()
            scores[:, 0] = -np.inf
            for row, user in enumerate(chunk):
                seen = [index_of[movie] for _, movie, _ in histories[user]]
                scores[row, seen] = -np.inf
                top = np.argsort(-scores[row], kind="stable")[:TOP_N]
                ranked[user] = [str(token_of[i]) for i in top if np.isfinite(scores[row, i])]
    return ranked, len(users) - len(known)


if __name__ == "__main__":
    main()
