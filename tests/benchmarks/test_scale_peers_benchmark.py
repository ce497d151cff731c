"""benchmarks/scale_peers.py's smoke mode on a small expanded synthetic set (slow: CI;
skipped where implicit is not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from movierec.data import load_dataset
from movierec.data.expand import FractalExpansion, write_expansion
from movierec.data.parquet_format import write_parquet_shards
from movierec.data.synth import SyntheticGenerator

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_scale_peers_benchmark_smoke(tmp_path):
    pytest.importorskip("implicit")
    planted = SyntheticGenerator(400, 150, 12_000, seed=2, movie_zipf=0.3)  # taste over fame
    write_parquet_shards(planted, tmp_path / "source")
    data = tmp_path / "expanded"
    write_expansion(FractalExpansion(load_dataset(tmp_path / "source"), 2, 2, seed=0), data)
    out = tmp_path / "peers.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale_peers.py"), "--smoke",
         "--data", str(data), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    grid = report["tuning"]["grid"]
    assert [row["alpha"] for row in grid] == [1.0, 10.0]
    assert report["tuning"]["chosen"]["ndcg@10"] == max(row["ndcg@10"] for row in grid)
    popularity, ials = report["test"]["popularity"], report["test"]["iALS (tuned)"]
    assert popularity["users"] == ials["users"] > 0  # the same test users
    assert ials["ndcg@10"] > popularity["ndcg@10"]  # the planted tastes are there to find
    assert report["sizes"]["test"] > 0.15 * report["sizes"]["ratings"]
