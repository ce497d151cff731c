"""Load test of the recommendation endpoint, on loopback only.

Starts ``movierec serve`` on 127.0.0.1 (a free port, a throw-away ratings
database), then an asyncio httpx client keeps ``--concurrency`` requests in
flight for ``--seconds``, each ``GET /users/{id}/recommendations`` for a random
user the model knows. Prints requests, throughput and p50/p95/p99 latency, and
writes them as JSON.

    python benchmarks/load.py --models MODELS [--seconds 10 --concurrency 8 --k 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from reporting import write_json

RESULTS = Path(__file__).parent / "results" / "load.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models: Path, port: int, db_url: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "movierec.cli.main", "serve", "--models", str(models),
               "--host", "127.0.0.1", "--port", str(port), "--db", db_url]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}:\n{server.stderr.read()}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


async def hammer(
    base: str, users: list[str], k: int, seconds: float, concurrency: int, seed: int
) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful requests, error count, wall seconds."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for user in users[:concurrency]:  # warm-up, not counted
            await client.get(f"/users/{user}/recommendations", params={"k": k})
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                user = rng.choice(users)
                sent = time.perf_counter()
                try:
                    response = await client.get(f"/users/{user}/recommendations",
                                                params={"k": k})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("-k", "--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600 or not 1 <= args.concurrency <= 256:
        parser.error("--seconds must be in (0, 600] and --concurrency in [1, 256]")
    users = json.loads((args.models / "retrieval" / "users.json").read_text())
    manifest = json.loads((args.models / "retrieval" / "manifest.json").read_text())

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(args.models, port, f"sqlite:///{scratch}/ratings.sqlite3")
        try:
            wait_ready(base, server)
            latencies, errors, wall = asyncio.run(
                hammer(base, users, args.k, args.seconds, args.concurrency, args.seed)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)

    lat = np.array(latencies) if latencies else np.array([np.nan])
    result = {
        "endpoint": "GET /users/{id}/recommendations",
        "k": args.k,
        "seconds": round(wall, 2),
        "concurrency": args.concurrency,
        "requests": len(latencies) + errors,
        "errors": errors,
        "throughput_rps": round(len(latencies) / wall, 1),
        "latency_ms": {
            name: round(float(np.percentile(lat, q)), 2)
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
        } | {"mean": round(float(lat.mean()), 2), "max": round(float(lat.max()), 2)},
        "models": {"retrieval": manifest["model"], "data": manifest["data"]["name"],
                   "users": len(users)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"{'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    latency = result["latency_ms"]
    print(f"{result['requests']:>9} {result['throughput_rps']:>8.1f} {latency['p50']:>8.2f} "
          f"{latency['p95']:>8.2f} {latency['p99']:>8.2f} {errors:>7}")
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
