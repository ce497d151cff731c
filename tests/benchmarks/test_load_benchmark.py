"""benchmarks/load.py end to end on the small example models (seconds, loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_load_benchmark_reads_and_mix(example_models, tmp_path):
    models, _ = example_models
    out = tmp_path / "load.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load.py"),
            "--models",
            str(models),
            "--seconds",
            "1",
            "--concurrency",
            "1",
            "4",
            "--mix",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert [(r["workload"], r["concurrency"]) for r in runs] == [
        ("reads", 1),
        ("reads", 4),
        ("mix 90/10", 1),
        ("mix 90/10", 4),
    ]
    for r in runs:
        assert r["errors"] == 0 and r["requests"] > 0 and r["throughput_rps"] > 0
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
    assert runs[0]["write_latency_ms"] is None and runs[3]["write_latency_ms"]["p50"] > 0
    assert "req/s" in run.stdout and result["first_answer_ms"] > 0
    assert all(r["cpu_ms_per_request"]["client"] > 0 for r in runs)


@pytest.mark.slow
def test_load_benchmark_with_and_without_explanations_in_one_run(example_models, tmp_path):
    models, _ = example_models
    out = tmp_path / "load-explain.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--models", str(models),
         "--explain", "--requests", "40", "--seconds", "60", "--concurrency", "1", "4",
         "--note", "a test", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert [(r["workload"], r["concurrency"]) for r in runs] == [
        ("reads", 1), ("reads", 4), ("reads, explained", 1), ("reads, explained", 4),
    ]  # fmt: skip
    assert all(r["requests"] == 40 and r["errors"] == 0 for r in runs)
    assert result["requests_per_run"] == 40 and result["note"] == "a test"
