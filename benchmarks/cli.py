"""Whole-process wall time of each ``movierec`` command, beside ``python -c "import numpy"``.

Each command runs as a fresh process (what a person typing it waits for: interpreter
start, imports, loading the saved models, the answer). Commands and the NumPy baseline
are timed in turns, ``--repeats`` times each, so machine load hits them alike; the
median is reported. Needs trained models (``movierec train --models DIR``) and the
data set they came from.

    python benchmarks/cli.py --models DIR [--data ml-100k] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import table, write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "cli.json"
#: (label, goal in seconds or a multiple of the NumPy baseline, argv after `movierec`)
BASELINE = "python -c 'import numpy'"


def commands(models: str, data: str, user: str, movie: str) -> list[tuple[str, str, list[str]]]:
    m = ["--models", models]
    return [
        ("movierec --help", "3x numpy", ["--help"]),
        ("movierec search star wars", "3x numpy", ["search", "star", "wars", *m]),
        (f"movierec data info --data {data}", "no JAX/Keras", ["data", "info", "--data", data]),
        (f"movierec recommend --user {user}", "< 2 s", ["recommend", "--user", user, *m]),
        (f"movierec rank --user {user} --movies ...", "< 2 s",
         ["rank", "--user", user, "--movies", movie, "1", "2", *m]),
        (f"movierec similar --movie {movie}", "< 2 s", ["similar", "--movie", movie, *m]),
    ]


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="directory of trained models")
    parser.add_argument("--data", default="ml-100k", help="data set for `data info`")
    parser.add_argument("--user", default="42")
    parser.add_argument("--movie", default="50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    movierec = [sys.executable, "-m", "movierec.cli.main"]
    baseline = [sys.executable, "-c", "import numpy"]
    runs = commands(args.models, args.data, args.user, args.movie)
    times: dict[str, list[float]] = {BASELINE: []}
    for label, _, argv in runs:
        wall_time([*movierec, *argv])  # warm the file cache once: "cold" means a new process
        times[label] = []
    for _ in range(args.repeats):
        for label, _, argv in runs:
            times[BASELINE].append(wall_time(baseline))
            times[label].append(wall_time([*movierec, *argv]))
    base = statistics.median(times[BASELINE])
    rows = [[BASELINE, base, 1.0, ""]]
    results = {BASELINE: {"median_s": base, "runs_s": times[BASELINE]}}
    for label, goal, _ in runs:
        median = statistics.median(times[label])
        rows.append([label, median, median / base, goal])
        results[label] = {"median_s": median, "runs_s": times[label], "goal": goal,
                          "times_numpy": median / base}
    print(f"Whole-process wall time, median of {args.repeats} "
          f"({platform.node()}, {os.cpu_count()} CPUs):")
    print(table(rows, ["command", "median s", "x numpy", "goal"]))
    write_json(args.out, {"repeats": args.repeats, "python": platform.python_version(),
                          "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "commands": results})


if __name__ == "__main__":
    main()
