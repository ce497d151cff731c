"""Streaming-training benchmark: the dcn ranker trained from Parquet shards, at scale.

    python benchmarks/streaming.py                 # 1M (memory vs streaming), then 20M
    python benchmarks/streaming.py --smoke         # seconds: 20K ratings, both modes

For each size a synthetic MovieLens-shaped data set (``movierec data synth``;
users = ratings / 20, movies = ratings / 200 capped at 100K, seed 0) is generated
once into ``--data-root`` and reused. Each training run is its own child process
(``movierec train ranking ...``) so its peak memory (``ru_maxrss``, recorded in the
saved model's manifest) is its own. Streamed runs read one shard at a time
(``--stream``, hash split 80/20, 5 % of training ratings for early stopping);
in-memory runs load the table (``--split hash``: the very same test ratings).
Prints a table, writes benchmarks/results/streaming.json.
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

RESULTS = Path(__file__).parent / "results" / "streaming.json"
GOAL = "20M synthetic ratings train with peak memory < 8 GiB"
GOAL_GIB = 8.0


def movierec(*args: str) -> list[str]:
    return [sys.executable, "-m", "movierec.cli.main", *args]


def shape(ratings: int) -> tuple[int, int]:
    """Users and movies for a data set of ``ratings`` (MovieLens-like densities)."""
    return max(ratings // 20, 50), min(max(ratings // 200, 100), 100_000)


def synthesize(root: Path, ratings: int) -> Path:
    users, movies = shape(ratings)
    out = root / f"synth-{ratings}"
    if (out / "meta.json").is_file():
        return out
    print(f"generating {ratings} ratings into {out} ...", file=sys.stderr, flush=True)
    sizes = ["--users", str(users), "--movies", str(movies), "--ratings", str(ratings)]
    subprocess.run(movierec("data", "synth", *sizes, "--seed", "0", "--out", str(out)), check=True)
    return out


def train(data: Path, streamed: bool, settings: list[str], epochs: int) -> dict[str, Any]:
    mode = "streamed" if streamed else "in memory"
    print(f"training on {data.name} ({mode}) ...", file=sys.stderr, flush=True)
    models = Path(tempfile.mkdtemp(prefix="movierec-bench-"))
    args = ["train", "ranking", "--data", str(data), "--models", str(models), "--quiet"]
    args += ["--stream"] if streamed else ["--split", "hash"]
    args += ["--epochs", str(epochs), *settings]
    started = time.perf_counter()
    try:
        done = subprocess.run(movierec(*args), capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"training failed:\n{done.stderr[-3000:]}")
        manifest = json.loads((models / "ranking" / "manifest.json").read_text())
    finally:
        shutil.rmtree(models, ignore_errors=True)
    return {
        "data": data.name,
        "ratings": manifest["data"]["ratings"],
        "mode": mode,
        "epochs_run": len(manifest["history"].get("loss", [])),
        "fit_seconds": manifest["training_seconds"],
        "wall_seconds": round(wall, 1),
        "peak_memory_gib": round(manifest["peak_memory_mib"] / 1024, 2),
        "rmse": manifest["metrics"].get("rmse"),
        "test_ratings_scored": manifest["metrics"].get("count"),
    }


def runs_table(rows: list[dict[str, Any]]) -> str:
    header = ["ratings", "mode", "epochs", "fit s", "wall s", "peak GiB", "test RMSE"]
    return table(
        [
            [
                f"{r['ratings']:,}",
                r["mode"],
                r["epochs_run"],
                f"{r['fit_seconds']:.0f}",
                f"{r['wall_seconds']:.0f}",
                f"{r['peak_memory_gib']:.2f}",
                f"{r['rmse']:.4f}" if r["rmse"] is not None else "-",
            ]
            for r in rows
        ],
        header,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds: 20K ratings only")
    parser.add_argument(
        "--compare",
        type=int,
        nargs="*",
        default=None,
        help="sizes trained both in memory and streamed (default 1000000)",
    )
    parser.add_argument(
        "--stream-only",
        type=int,
        nargs="*",
        default=None,
        help="sizes trained streamed only (default 20000000)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("MOVIEREC_HOME", "~/.movierec")).expanduser() / "bench",
        help="where generated data sets are kept between runs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    compare = args.compare if args.compare is not None else [20_000 if args.smoke else 1_000_000]
    stream_only = args.stream_only
    if stream_only is None:
        stream_only = [] if args.smoke else [20_000_000]
    # One network, bigger batches than on ML-100K: a million users make every step
    # touch large embedding tables, so fewer, larger steps train faster.
    settings = ["--set", "members=1", "--set", "users_per_batch=1024"]
    if args.smoke:
        settings += ["--set", "embedding_dim=8", "--set", "users_per_batch=64"]

    started = time.perf_counter()
    rows = []
    for size in compare:
        data = synthesize(args.data_root, size)
        rows += [
            train(data, False, settings, args.epochs),
            train(data, True, settings, args.epochs),
        ]
    for size in stream_only:
        rows.append(train(synthesize(args.data_root, size), True, settings, args.epochs))
    biggest = [r for r in rows if r["ratings"] >= 20_000_000 and r["mode"] == "streamed"]
    verdict = "not measured (no streamed run of 20M ratings)"
    if biggest:
        peak = biggest[0]["peak_memory_gib"]
        verdict = f"{'MET' if peak < GOAL_GIB else 'NOT MET'}: peak {peak:.2f} GiB"
    result = {
        "command": " ".join(["python", "benchmarks/streaming.py", *sys.argv[1:]]),
        "settings": settings,
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count()},
        "runs": rows,
        "goal": {"training_20m": GOAL, "verdict": verdict},
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(runs_table(rows))
    print(f"\ngoal ({GOAL}): {verdict}")
    write_json(args.out, result)
    print(f"written to {args.out} in {result['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
