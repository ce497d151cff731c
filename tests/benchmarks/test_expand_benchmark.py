"""benchmarks/expand.py's smoke mode end to end on a small synthetic source (slow: CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from movierec.data.parquet_format import write_parquet_shards
from movierec.data.synth import SyntheticGenerator

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_expand_benchmark_smoke(tmp_path):
    source = tmp_path / "source"
    write_parquet_shards(SyntheticGenerator(300, 200, 6_000, seed=1), source)
    out = tmp_path / "expand.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "expand.py"), "--smoke", "--data", str(source),
         "--spectrum", "4", "--work-dir", str(tmp_path), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Ratings per user" in result.stdout and "Target:" in result.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["user_multiplier"] == 3 and report["settings"]["smoke"]
    assert abs(report["sizes"]["ratings"] - 3 * 6_000) < 0.05 * 3 * 6_000
    assert report["run"]["seconds"] > 0 and report["run"]["peak_memory_mib"] > 0
    users = report["counts"]["per user"]
    assert set(users) == {"source", "expanded", "plain tiling", "uniform random"}
    assert abs(users["expanded"]["gini"] - users["source"]["gini"]) < 0.05
    assert users["uniform random"]["gini"] < users["source"]["gini"] - 0.1
    assert 0 < report["copy_jaccard"] < 1
    assert len(report["spectrum"]["expanded"]) == 4
    assert not report["target_met"]["ratings"]
    assert not list(tmp_path.glob("movierec-expand-*"))
