"""Load test of the HTTP service, on loopback only.

Starts ``movierec serve`` on 127.0.0.1 (a free port, a throw-away ratings
database, an API key, no rate limit), waits for it to print "serving on", then
for each ``--concurrency`` an asyncio httpx client keeps that many requests in
flight for ``--seconds``:

* ``reads``: every request ``GET /users/{id}/recommendations`` for a random user
  the model knows;
* ``mix`` (with ``--mix``): 90% of requests those reads, 10% ``POST
  /users/{id}/ratings`` of a random movie (the next read of that user uses it);
* ``reads, explained`` (with ``--explain``): the same reads with ``explain=true``,
  so one run shows what the reasons ("because you rated ...") cost.

Each run lasts ``--seconds`` or, with ``--requests N``, until N requests were sent.
Prints throughput and p50/p95/p99 latency per run and writes them as JSON.

    python benchmarks/load.py --models MODELS [--seconds 10 --concurrency 1 8 32 --mix]
    python benchmarks/load.py --models MODELS --explain --requests 300 --concurrency 1 8 \
        --out benchmarks/results/load-explain.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from reporting import table, write_json

RESULTS = Path(__file__).parent / "results" / "load.json"
WRITE_SHARE = 0.1
EXPLAINED = "reads, explained"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models: Path, port: int, db_url: str, key: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "movierec.cli.main",
        "serve",
        "--models",
        str(models),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        db_url,
        "--rate-limit",
        "off",
    ]
    env = {**os.environ, "MOVIEREC_API_KEY": key}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )


def wait_ready(server: subprocess.Popen, timeout: float = 300.0) -> float:
    """Seconds until the server printed "serving on" (it does so once it answers)."""
    started = time.monotonic()
    lines: list[str] = []

    def read() -> None:
        for line in server.stdout:
            lines.append(line)
            if line.startswith("serving on"):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[-1].startswith("serving on"):
        server.kill()
        raise SystemExit(f"server not ready after {timeout:.0f} s: {''.join(lines)}")
    return time.monotonic() - started


async def hammer(
    base: str,
    key: str,
    users: list[str],
    movies: list[str],
    k: int,
    seconds: float,
    concurrency: int,
    write_share: float,
    seed: int,
    explain: bool = False,
    requests: int | None = None,
) -> dict:
    """Latencies (ms) of successful reads and writes, error count, wall seconds; reads
    ask for explanations with ``explain``; at most ``requests`` are sent when given."""
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {"read": [], "write": []}
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=30, headers=headers
    ) as client:
        # open the connections (not counted)
        await asyncio.gather(*(client.get("/health/live") for _ in range(concurrency)))
        started = time.perf_counter()
        deadline = started + seconds
        params = {"k": k, "explain": "true"} if explain else {"k": k}
        sent_count = 0

        async def worker() -> None:
            nonlocal errors, sent_count
            while time.perf_counter() < deadline:
                if requests is not None:
                    if sent_count >= requests:
                        return
                    sent_count += 1
                user = rng.choice(users)
                kind = "write" if rng.random() < write_share else "read"
                sent = time.perf_counter()
                try:
                    if kind == "read":
                        response = await client.get(
                            f"/users/{user}/recommendations", params=params
                        )
                        ok = response.status_code == 200
                    else:
                        body = {"movie_id": rng.choice(movies), "rating": rng.randint(1, 5)}
                        response = await client.post(f"/users/{user}/ratings", json=body)
                        ok = response.status_code == 201
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[kind].append((time.perf_counter() - sent) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall": wall}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its threads (Linux; else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_request_ms(before: float | None, after: float | None, done: int) -> float | None:
    if before is None or after is None:
        return None
    return round((after - before) * 1000 / max(done, 1), 2)


def summary(latencies: list[float]) -> dict[str, float]:
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        name: round(float(np.percentile(lat, q)), 2)
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
    } | {"mean": round(float(lat.mean()), 2), "max": round(float(lat.max()), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--mix",
        action="store_true",
        help="also run 90%% reads / 10%% rating writes at each concurrency",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also run the reads with explain=true at each concurrency",
    )
    parser.add_argument(
        "--requests", type=int, default=None, help="end each run after this many requests"
    )
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. a shared machine)")
    parser.add_argument("-k", "--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600 or not all(1 <= c <= 256 for c in args.concurrency):
        parser.error("--seconds must be in (0, 600] and each --concurrency in [1, 256]")
    if args.requests is not None and not 1 <= args.requests <= 100_000:
        parser.error("--requests must be in [1, 100000]")
    users = json.loads((args.models / "retrieval" / "users.json").read_text())
    movies = json.loads((args.models / "retrieval" / "movies.json").read_text())
    manifest = json.loads((args.models / "retrieval" / "manifest.json").read_text())

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = secrets.token_urlsafe(24)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(args.models, port, f"sqlite:///{scratch}/ratings.sqlite3", key)
        try:
            ready_s = wait_ready(server)
            # the first recommendation after "serving on" (warm-up done at start-up),
            # on a client and connection opened beforehand (not part of the answer)
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as client:
                client.get("/health/live")
                sent = time.perf_counter()
                first = client.get(f"/users/{users[0]}/recommendations")
                first_ms = (time.perf_counter() - sent) * 1000
                second_sent = time.perf_counter()
                client.get(f"/users/{users[1]}/recommendations")
                second_ms = (time.perf_counter() - second_sent) * 1000
            assert first.status_code == 200, first.text
            workloads = [("reads", 0.0, False)]
            workloads += [(EXPLAINED, 0.0, True)] if args.explain else []
            workloads += [("mix 90/10", WRITE_SHARE, False)] if args.mix else []
            for name, share, explain in workloads:
                for concurrency in args.concurrency:
                    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                    out = asyncio.run(
                        hammer(
                            base,
                            key,
                            users,
                            movies,
                            args.k,
                            args.seconds,
                            concurrency,
                            share,
                            args.seed,
                            explain,
                            args.requests,
                        )
                    )
                    done = sum(len(v) for v in out["latencies"].values())
                    # CPU time per answered request: what one core can sustain
                    cpu_ms = {
                        "server": per_request_ms(server_cpu, cpu_seconds(server.pid), done),
                        "client": per_request_ms(client_cpu, time.process_time(), done),
                    }
                    runs.append(
                        {
                            "workload": name,
                            "concurrency": concurrency,
                            "seconds": round(out["wall"], 2),
                            "requests": done + out["errors"],
                            "errors": out["errors"],
                            "throughput_rps": round(done / out["wall"], 1),
                            "cpu_ms_per_request": cpu_ms,
                            "latency_ms": summary(
                                out["latencies"]["read"] + out["latencies"]["write"]
                            ),
                            "read_latency_ms": summary(out["latencies"]["read"]),
                            "write_latency_ms": summary(out["latencies"]["write"])
                            if out["latencies"]["write"]
                            else None,
                        }
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)

    result = {
        "endpoints": {
            "read": "GET /users/{id}/recommendations",
            "write": "POST /users/{id}/ratings",
            "explained read": "GET /users/{id}/recommendations?explain=true",
        },
        "requests_per_run": args.requests,
        "note": args.note,
        "k": args.k,
        "ready_seconds": round(ready_s, 2),
        "first_answer_ms": round(first_ms, 2),
        "second_answer_ms": round(second_ms, 2),
        "runs": runs,
        "models": {
            "retrieval": manifest["model"],
            "data": manifest["data"]["name"],
            "users": len(users),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = [
        [
            r["workload"],
            r["concurrency"],
            r["requests"],
            r["throughput_rps"],
            r["latency_ms"]["p50"],
            r["latency_ms"]["p95"],
            r["latency_ms"]["p99"],
            r["write_latency_ms"]["p99"] if r["write_latency_ms"] else "-",
            r["cpu_ms_per_request"]["server"] or "-",
            r["cpu_ms_per_request"]["client"],
            r["errors"],
        ]
        for r in runs
    ]
    print(
        table(
            rows,
            [
                "workload",
                "conc.",
                "requests",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "write p99",
                "server CPU ms/req",
                "client CPU ms/req",
                "errors",
            ],
        )
    )
    print(
        f"ready {ready_s:.1f} s after start; first answer {first_ms:.1f} ms, "
        f"second {second_ms:.1f} ms"
    )
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
