"""One dcn training step at chosen table sizes, row-sparse beside dense, without an epoch.

    python benchmarks/dcn_step.py                          # 1M users, 100K movies (20M-sized)
    python benchmarks/dcn_step.py --users 50000 --movies 5000 --steps 10

Builds the network with ``--users`` and ``--movies`` rows, synthetic ratings (16 a
user, Zipf-popular movies), and times ``--steps`` training steps of 1,024 users x 8
ratings (the streaming benchmark's batch) after one that compiles, with row-sparse
and with dense updates in turn. Reports wall and CPU seconds a step: CPU time is the
work done, which a machine shared with other jobs does not inflate as much as wall
time. Prints a table, writes benchmarks/results/dcn_step.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from reporting import table, write_json

RESULTS = Path(__file__).parent / "results" / "dcn_step.json"


def time_steps(users: int, movies: int, sparse: bool, steps: int, seed: int) -> dict[str, Any]:
    import movierec  # noqa: F401  (selects the JAX backend before keras loads)
    from movierec.data.histories import Histories
    from movierec.ranking.batches import Arrays, BatchBuilder, make_groups
    from movierec.ranking.rating_network import RatingNetwork
    from movierec.ranking.settings import DcnSettings
    from movierec.ranking.trainer import Trainer, TrainOptions

    settings = {**DcnSettings.defaults(), "users_per_batch": 1024, "sparse_updates": sparse}
    rng = np.random.default_rng(seed)
    n = users * 16
    user = rng.integers(1, users, n).astype(np.int32)
    movie = (rng.zipf(1.3, n) % (movies - 1) + 1).astype(np.int32)
    rating = rng.integers(1, 6, n).astype(np.float32)
    histories = Histories.from_ratings(user, movie, rating, users)
    network = RatingNetwork(
        num_users=users,
        num_movies=movies,
        feature_sizes={
            "age": 8,
            "gender": 3,
            "occupation": 22,
            "zip": 1000,
            "genre": 20,
            "year": 100,
            "title_word": 5000,
        },
        genres_per_movie=6,
        words_per_title=8,
        embedding_dim=settings["embedding_dim"],
        hidden_units=settings["hidden_units"],
    )
    network.build_weights()
    trainer = Trainer(network, settings, TrainOptions(progress=False))
    builder = BatchBuilder(
        histories,
        settings["history_length"],
        settings["ratings_per_user"],
        id_dropout=settings["id_dropout"],
        sparse_users=sparse,
        num_movies=movies,
    )
    arrays = Arrays(user, movie, rating)
    groups = make_groups(user[: 1024 * 8 * (steps + 1) * 2], 8, rng)
    started = time.perf_counter()
    batches = []
    for i in range(steps + 1):
        batch = builder.build(arrays, groups[i * 1024 : (i + 1) * 1024], 1024, rng)
        batches.append({k: v[None] for k, v in batch.items()})
    build = (time.perf_counter() - started) / (steps + 1)
    state = trainer.initial_state(None)
    step = trainer._build_step(1024, 1024 * 8)
    # Compile every shape the batches need (row-sparse batches come in a few sizes).
    for shape in {b.get("movie_rows", b["user"]).shape for b in batches}:
        first = next(b for b in batches if b.get("movie_rows", b["user"]).shape == shape)
        state, out = step(state, trainer._global_batch(first))
        np.asarray(out)
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches[1:]:
        state, out = step(state, trainer._global_batch(batch))
        np.asarray(out)
    return {
        "users": users,
        "movies": movies,
        "updates": "sparse" if sparse else "dense",
        "steps": steps,
        "wall_seconds_per_step": round((time.perf_counter() - wall) / steps, 4),
        "cpu_seconds_per_step": round((time.process_time() - cpu) / steps, 4),
        "batch_build_seconds": round(build, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--movies", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.users < 2 or args.movies < 2 or args.steps < 1:
        parser.error("--users and --movies must be at least 2, --steps at least 1")
    rows = [time_steps(args.users, args.movies, s, args.steps, args.seed) for s in (True, False)]
    print(
        table(
            [
                [
                    f"{r['users']:,}",
                    f"{r['movies']:,}",
                    r["updates"],
                    r["steps"],
                    f"{r['wall_seconds_per_step']:.3f}",
                    f"{r['cpu_seconds_per_step']:.3f}",
                    f"{r['batch_build_seconds']:.3f}",
                ]
                for r in rows
            ],
            ["users", "movies", "updates", "steps", "wall s/step", "CPU s/step", "build s"],
        )
    )
    ratio = rows[1]["cpu_seconds_per_step"] / max(rows[0]["cpu_seconds_per_step"], 1e-9)
    print(f"dense / sparse CPU per step: {ratio:.2f}x")
    write_json(
        args.out,
        {
            "command": " ".join(["python", "benchmarks/dcn_step.py", *sys.argv[1:]]),
            "machine": {"cores": os.cpu_count(), "load_average": os.getloadavg()},
            "runs": rows,
            "dense_over_sparse_cpu": round(ratio, 2),
        },
    )


if __name__ == "__main__":
    main()
