"""Fractal expansion benchmark: grow a real set with `movierec data expand`, report its shape.

    python benchmarks/expand.py        # ml-latest-small-2016 x210 users x12 movies: 21M ratings
    python benchmarks/expand.py --data ml-100k --user-multiplier 107 --movie-multiplier 60 \\
        --ratings 20000000             # MovieLens 100K to 20M
    python benchmarks/expand.py --smoke --data DIR   # seconds: x3 users x2 movies

The expansion runs as its own child process (``movierec data expand``), so its wall time
and peak memory (``ru_maxrss``) are its own. The script then reads the shards back one at a
time (user and movie ids only) and compares source and expansion:

- per-user and per-movie rating counts: quantiles, Gini, and the log-log slope of the
  rank-frequency curve (log count against log rank / N over ranks 0.1 % to 50 %; a scaled
  copy of a distribution has the same slope), beside two baselines of the same size: a
  plain tiling (every copy is its source: the source's shape exactly, but each copy of a
  user rates the very same movies) and uniform random pairs (no shape at all);
- how alike two copies of one user are: the Jaccard index of the source movies that
  copies 0 and 1 of each source user rated (a tiling: 1);
- the stars: share of each value, source against expansion;
- the leading singular values of the 0/1 matrices, divided by the first (``--spectrum``).

Prints tables, writes benchmarks/results/expand-<source>.json (the output directory is
removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from reporting import table, write_json

RESULTS = Path(__file__).parent / "results"
ML_LATEST_SMALL = "/work/shared/data/ml-latest-small-2016"
TARGET = {"ratings": 20_000_000, "users": 100_000, "movies": 100_000}
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts (0: all equal; near 1: one holds all)."""
    x = np.sort(np.asarray(counts, np.float64))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def loglog_slope(counts: np.ndarray) -> float:
    """Slope of log(count) on log(rank / N), ranks 0.1 % to 50 % of the non-zero counts."""
    x = np.sort(counts[counts > 0])[::-1].astype(np.float64)
    rank = np.arange(1, len(x) + 1) / len(x)
    keep = (rank >= 0.001) & (rank <= 0.5)
    if keep.sum() < 3:
        keep = rank <= 0.5
    return float(np.polyfit(np.log(rank[keep]), np.log(x[keep]), 1)[0])


def shape(counts: np.ndarray) -> dict[str, Any]:
    """What the tables and the JSON say about one count distribution (zeros left out)."""
    x = counts[counts > 0]
    return {
        "n": int(len(x)),
        "mean": round(float(x.mean()), 2),
        **{f"p{round(q * 100)}": float(np.quantile(x, q)) for q in QUANTILES},
        "max": int(x.max()),
        "gini": round(gini(x), 4),
        "loglog_slope": round(loglog_slope(x), 4),
    }


def spectrum(user: np.ndarray, movie: np.ndarray, users: int, movies: int, k: int) -> list[float]:
    """The ``k`` leading singular values of the 0/1 users x movies matrix, over the first."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import svds

    matrix = csr_matrix((np.ones(len(user), np.float32), (user, movie)), shape=(users, movies))
    v0 = np.random.default_rng(0).standard_normal(min(users, movies)).astype(np.float32)
    values = np.sort(svds(matrix, k=min(k, min(users, movies) - 1), v0=v0)[1])[::-1]
    return [round(float(v / values[0]), 4) for v in values]


def expand(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run ``movierec data expand`` in a child process: its wall time and peak memory."""
    command = [
        sys.executable,
        "-m",
        "movierec.cli.main",
        "data",
        "expand",
        "--data",
        args.data,
        "--user-multiplier",
        str(args.user_multiplier),
        "--movie-multiplier",
        str(args.movie_multiplier),
        "--seed",
        str(args.seed),
        "--out",
        str(out),
        *(["--ratings", str(args.ratings)] if args.ratings else []),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "command": " ".join(["movierec", *command[3:]]),
        "seconds": round(seconds, 1),
        "peak_memory_mib": round(peak_kib / 1024, 1),
    }


def read_expansion(out: Path, m: int, n: int, k: int, l_: int) -> dict[str, Any]:
    """Per-user and per-movie counts, star shares and copies 0 and 1 of each source user,
    reading the shards one at a time."""
    meta = json.loads((out / "meta.json").read_text())
    users = np.zeros(k * m, np.int64)
    movies = np.zeros(l_ * n, np.int64)
    stars: dict[float, int] = {}
    first_two: list[tuple[np.ndarray, np.ndarray]] = []
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for name in meta["shards"]:
        shard = pq.read_table(out / name, columns=["user_id", "movie_id", "rating"])
        user = pc.cast(shard["user_id"], "int64").to_numpy() - 1
        movie = pc.cast(shard["movie_id"], "int64").to_numpy() - 1
        users += np.bincount(user, minlength=k * m)
        movies += np.bincount(movie, minlength=l_ * n)
        values, counts = np.unique(shard["rating"].to_numpy(), return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            stars[v] = stars.get(v, 0) + c
        early = user < 2 * m
        first_two.append((user[early], movie[early]))
        kept.append((user, movie))
    user = np.concatenate([u for u, _ in first_two])
    movie = np.concatenate([v for _, v in first_two]) % n
    copy0 = [set() for _ in range(m)]
    copy1 = [set() for _ in range(m)]
    for u, v in zip(user.tolist(), movie.tolist(), strict=True):
        (copy0 if u < m else copy1)[u % m].add(v)
    jaccard = [len(a & b) / len(a | b) for a, b in zip(copy0, copy1, strict=True) if a | b]
    return {
        "meta": meta,
        "users": users,
        "movies": movies,
        "stars": stars,
        "copy_jaccard": float(np.mean(jaccard)),
        "pairs": kept,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=ML_LATEST_SMALL, help="source data set")
    parser.add_argument("--user-multiplier", type=int, default=210)
    parser.add_argument("--movie-multiplier", type=int, default=12)
    parser.add_argument("--ratings", type=int, default=None, help="expected ratings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="x3 users, x2 movies (seconds)")
    parser.add_argument("--spectrum", type=int, default=10, help="singular values (0: none)")
    parser.add_argument("--out", type=Path, help="JSON path (default results/expand-<source>)")
    parser.add_argument("--work-dir", type=Path, help="where the expansion is written")
    parser.add_argument("--keep", action="store_true", help="keep the expanded data set")
    args = parser.parse_args(argv)
    if args.smoke:
        args.user_multiplier, args.movie_multiplier, args.ratings = 3, 2, None

    from movierec.data import load_dataset
    from movierec.data.vocab import natural_order

    source = load_dataset(args.data)
    k, l_ = args.user_multiplier, args.movie_multiplier
    work = Path(tempfile.mkdtemp(prefix="movierec-expand-", dir=args.work_dir))
    out = work / "expanded"
    try:
        run = expand(args, out)
        user_order = natural_order(source.ratings["user_id"].unique())
        movie_order = natural_order(source.movies["movie_id"])
        m, n = len(user_order), len(movie_order)
        got = read_expansion(out, m, n, k, l_)
        src_user = source.ratings["user_id"].value_counts().to_numpy()
        src_movie = source.ratings["movie_id"].value_counts().to_numpy()
        total = int(got["users"].sum())
        rng = np.random.default_rng(0)
        uniform_user = rng.multinomial(total, np.full(k * m, 1 / (k * m)))
        bins = l_ * len(src_movie)  # uniform over the movie copies of rated movies
        uniform_movie = rng.multinomial(total, np.full(bins, 1 / bins))
        scale_user, scale_movie = total / len(source.ratings) / k, total / len(source.ratings) / l_
        rows = {
            "per user": {
                "source": shape(src_user),
                "expanded": shape(got["users"]),
                "plain tiling": shape(np.tile(np.round(src_user * scale_user), k)),
                "uniform random": shape(uniform_user),
            },
            "per movie": {
                "source": shape(src_movie),
                "expanded": shape(got["movies"]),
                "plain tiling": shape(np.tile(np.round(src_movie * scale_movie), l_)),
                "uniform random": shape(uniform_movie),
            },
        }
        src_stars = source.ratings["rating"].value_counts(normalize=True).sort_index()
        stars = {
            str(v): {
                "source": round(float(src_stars.get(v, 0.0)), 4),
                "expanded": round(got["stars"].get(v, 0) / total, 4),
            }
            for v in sorted(set(src_stars.index.tolist()) | set(got["stars"]))
        }
        spectra = None
        if args.spectrum:
            started = time.perf_counter()
            index_u = {x: i for i, x in enumerate(user_order)}
            index_m = {x: i for i, x in enumerate(movie_order)}
            u = source.ratings["user_id"].map(index_u).to_numpy()
            v = source.ratings["movie_id"].map(index_m).to_numpy()
            eu = np.concatenate([a for a, _ in got["pairs"]])
            ev = np.concatenate([b for _, b in got["pairs"]])
            spectra = {
                "source": spectrum(u, v, m, n, args.spectrum),
                "expanded": spectrum(eu, ev, k * m, l_ * n, args.spectrum),
                "seconds": round(time.perf_counter() - started, 1),
            }
            del eu, ev
    finally:
        if args.keep:
            print(f"expanded data set kept in {out}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    meta = got["meta"]
    sizes = {
        "ratings": meta["sizes"]["ratings"],
        "users": int((got["users"] > 0).sum()),
        "movies": meta["sizes"]["movies"],
        "movies_rated": int((got["movies"] > 0).sum()),
    }
    met = {key: sizes[key] >= goal for key, goal in TARGET.items()}
    columns = [
        "n",
        "mean",
        *(f"p{round(q * 100)}" for q in QUANTILES),
        "max",
        "gini",
        "loglog_slope",
    ]
    print(
        f"{run['command']}: {sizes['ratings']:,} ratings, {sizes['users']:,} users, "
        f"{sizes['movies']:,} movies, {run['seconds']} s, {run['peak_memory_mib']} MiB peak"
    )
    for label, by in rows.items():
        print(f"\nRatings {label}:")
        print(table([[name, *(r[c] for c in columns)] for name, r in by.items()], ["", *columns]))
    print(
        f"\nCopies 0 and 1 of a source user: mean Jaccard {got['copy_jaccard']:.3f} "
        "of their source movies (plain tiling: 1)"
    )
    print("\nStars (share):")
    print(
        table(
            [[s, v["source"], v["expanded"]] for s, v in stars.items()],
            ["stars", "source", "expanded"],
        )
    )
    if spectra:
        print(f"\nSingular values / the first ({spectra['seconds']} s):")
        print(
            table(
                [["source", *spectra["source"]], ["expanded", *spectra["expanded"]]],
                ["", *(f"s{i + 1}" for i in range(len(spectra["source"])))],
            )
        )
    verdict = ", ".join(
        f"{key} >= {goal:,}: {'MET' if met[key] else 'NOT MET'}" for key, goal in TARGET.items()
    )
    print(f"\nTarget: {verdict}")
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"node": platform.node(), "cpus": os.cpu_count()},
        "source": {k_: v for k_, v in source.describe().items() if k_ != "source"},
        "settings": {
            "user_multiplier": k,
            "movie_multiplier": l_,
            "ratings": args.ratings,
            "seed": args.seed,
            "smoke": args.smoke,
        },
        "run": run,
        "sizes": sizes,
        "target": TARGET,
        "target_met": met,
        "counts": rows,
        "copy_jaccard": round(got["copy_jaccard"], 4),
        "stars": stars,
        "spectrum": spectra,
    }
    name = source.name + ("-smoke" if args.smoke else "")
    write_json(args.out or RESULTS / f"expand-{name}.json", result)


if __name__ == "__main__":
    main()
