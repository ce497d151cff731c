"""Streaming-training benchmark of the two-tower retriever, then its faiss index.

    python benchmarks/streaming_retrieval.py                  # 20M ratings, 1M users, 100K movies
    python benchmarks/streaming_retrieval.py --size 1000000   # 1M ratings, 50K users, 5K movies
    python benchmarks/streaming_retrieval.py --steps 100      # a bounded epoch (extrapolated)
    python benchmarks/streaming_retrieval.py --smoke          # seconds: 20K ratings, small model

The data set is the one ``benchmarks/streaming.py`` uses (``movierec data synth``, seed 0,
kept in ``--data-root``). One child process runs ``movierec train retrieval --stream``
(hash split 80/20, one epoch; its peak memory, ``ru_maxrss``, is in the saved manifest),
a second ``movierec index build --kind faiss-hnsw`` on the saved model. ``--steps N``
trains N steps instead of a whole pass over the users and reports the epoch time that
pass would take at the measured seconds per step (labelled as extrapolated). Prints a
table and writes the run under ``two_tower`` / its size in benchmarks/results/streaming.json,
keeping the ranker's runs and other sizes' there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import table, write_json
from streaming import GOAL_GIB, RESULTS, movierec, synthesize

KEY = "two_tower"
#: Users per step: a million users make a step of 64 (the in-memory default) too short
#: to pay for its fixed costs.
BENCH_SETTINGS = ["--set", "batch_size=1024"]
SMOKE_SETTINGS = [
    "--set", "batch_size=128", "--set", "embedding_dim=32", "--set", "hidden_dim=64",
    "--set", "item_item_rank=32",
]  # fmt: skip
_PEAK = (
    "import resource, sys; from movierec.cli.main import main; code = main(sys.argv[1:]); "
    "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
    "sys.exit(code)"
)


def run(data: Path, settings: list[str], steps: int | None) -> dict[str, Any]:
    models = Path(tempfile.mkdtemp(prefix="movierec-bench-retrieval-"))
    args = ["train", "retrieval", "--data", str(data), "--models", str(models), "--stream"]
    args += ["--epochs", "1", "--quiet", *settings]
    if steps:
        args += ["--set", f"steps_per_epoch={steps}"]
    try:
        print(f"training the two-tower streamed on {data.name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run(movierec(*args), capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"training failed:\n{done.stderr[-3000:]}")
        manifest = json.loads((models / "retrieval" / "manifest.json").read_text())
        print("building the faiss index ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        index_args = ["index", "build", "--models", str(models), "--kind", "faiss-hnsw"]
        built = subprocess.run(
            [sys.executable, "-c", _PEAK, *index_args], capture_output=True, text=True
        )
        index_wall = time.perf_counter() - started
        if built.returncode != 0:
            raise SystemExit(f"index build failed:\n{built.stderr[-3000:]}")
        build = json.loads((models / "retrieval" / "index" / "build.json").read_text())
        index_peak = [ln for ln in built.stderr.splitlines() if ln.startswith("peak_kib")]
    finally:
        shutil.rmtree(models, ignore_errors=True)
    history, metrics = manifest["history"], manifest["metrics"]
    steps_run = history["steps_per_epoch"][0]
    steps_pass = history["steps_per_pass"][0]
    epoch = history["epoch_seconds"][0]
    full_epoch = epoch * steps_pass / steps_run
    train_ratings = history["train_ratings"][0]
    return {
        "data": data.name,
        "ratings": manifest["data"]["ratings"],
        "train_ratings": int(train_ratings),
        "users": manifest["data"]["users"],
        "movies": manifest["data"]["movies"],
        "settings": settings + (["--set", f"steps_per_epoch={steps}"] if steps else []),
        "steps_run": int(steps_run),
        "steps_per_epoch": int(steps_pass),
        "epoch_bounded": steps_run < steps_pass,
        "deep_seconds_measured": round(epoch, 1),
        "seconds_per_step": round(epoch / steps_run, 3),
        "epoch_seconds": round(full_epoch, 1),
        "epoch_seconds_is": "extrapolated" if steps_run < steps_pass else "measured",
        "seconds_per_1m_ratings": round(full_epoch / (train_ratings / 1e6), 2),
        "item_item_seconds": round(history.get("item_item_seconds", [0.0])[0], 1),
        "item_item_lambda": history.get("item_item_lambda", [None])[0],
        "fit_seconds": manifest["training_seconds"],
        "wall_seconds": round(wall, 1),
        "peak_memory_gib": round(manifest["peak_memory_mib"] / 1024, 2),
        "index": build["kind"],
        "index_build_seconds": build["build_seconds"],
        "index_wall_seconds": round(index_wall, 1),
        "index_peak_memory_gib": (
            round(int(index_peak[-1].split()[1]) / 2**20, 2) if index_peak else None
        ),
        "metrics": metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000_000, help="ratings (default 20M)")
    parser.add_argument("--steps", type=int, default=None, help="train N steps, extrapolate")
    parser.add_argument("--smoke", action="store_true", help="seconds: 20K ratings, small model")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a further model setting for the run (recorded with it)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("MOVIEREC_HOME", "~/.movierec")).expanduser() / "bench",
        help="where generated data sets are kept between runs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = 20_000 if args.smoke else args.size
    settings = SMOKE_SETTINGS if args.smoke else BENCH_SETTINGS
    settings = [*settings, *(arg for pair in args.overrides for arg in ("--set", pair))]
    started = time.perf_counter()
    row = run(synthesize(args.data_root, size), settings, args.steps)
    header = ["ratings", "users", "movies", "steps", "epoch s", "s / 1M ratings", "item-item s",
              "peak GiB", "index s", "ndcg@10", "popularity ndcg@10"]  # fmt: skip
    metrics = row["metrics"]
    print(
        table(
            [
                [
                    f"{row['ratings']:,}",
                    f"{row['users']:,}",
                    f"{row['movies']:,}",
                    f"{row['steps_run']}/{row['steps_per_epoch']}",
                    f"{row['epoch_seconds']:.0f}"
                    + (" (extrapolated)" if row["epoch_bounded"] else ""),
                    f"{row['seconds_per_1m_ratings']:.1f}",
                    f"{row['item_item_seconds']:.0f}",
                    f"{row['peak_memory_gib']:.2f}",
                    f"{row['index_build_seconds']:.1f}",
                    f"{metrics.get('ndcg@10', float('nan')):.4f}",
                    f"{metrics.get('popularity_ndcg@10', float('nan')):.4f}",
                ]
            ],
            header,
        )  # fmt: skip
    )
    verdict = f"{'MET' if row['peak_memory_gib'] < GOAL_GIB else 'NOT MET'}: peak "
    verdict += f"{row['peak_memory_gib']:.2f} GiB"
    print(f"\ngoal (streamed two-tower under {GOAL_GIB:g} GiB): {verdict}")
    result = {
        "command": " ".join(["python", "benchmarks/streaming_retrieval.py", *sys.argv[1:]]),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count()},
        "run": row,
        "goal": {"peak_memory": f"under {GOAL_GIB:g} GiB", "verdict": verdict},
        "seconds": round(time.perf_counter() - started, 1),
    }
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = previous.get(KEY, {}) if isinstance(previous.get(KEY), dict) else {}
    runs = {k: v for k, v in runs.items() if k.isdigit()}  # one entry per data-set size
    write_json(args.out, {**previous, KEY: {**runs, str(size): result}})
    where = f"key {KEY!r}, {size}"
    print(f"written to {args.out} ({where}) in {result['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
