"""The benchmarks' smoke modes run end to end on small local data (no download); slow:
CI runs them, a local run skips them unless ``--slow``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from movierec.testing import make_planted_dataset, write_ml_latest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _smoke(script: str, *args: str) -> str:
    """Run ``benchmarks/SCRIPT --smoke ARGS``; its stdout, once it has exited 0."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_quality_benchmark_smoke(tmp_path):
    data = write_ml_latest(make_planted_dataset(), tmp_path / "data")
    out = tmp_path / "quality.json"
    stdout = _smoke("quality.py", "--data", str(data), "--out", str(out))
    assert "Retrieval (random split" in stdout and "Two-stage" in stdout
    report = json.loads(out.read_text())
    rows = report["random"]
    ease, popular = rows["retrieval/EASE"]["ndcg@10"][0], rows["retrieval/popularity"]["ndcg@10"][0]
    assert ease > popular  # the planted taste is there to be found
    assert {"ranking/movierec-dcn", "ranking/movierec-example"} <= set(rows)
    assert any(name.startswith("two-stage/") for name in rows)


@pytest.mark.slow
def test_streaming_benchmark_smoke(tmp_path):
    out = tmp_path / "streaming.json"
    stdout = _smoke("streaming.py", "--data-root", str(tmp_path / "data"), "--out", str(out))
    assert "peak GiB" in stdout
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert [(r["mode"], r["updates"]) for r in runs] == [
        ("in memory", "sparse"), ("streamed", "sparse"), ("streamed", "dense")
    ]
    # Same data, same hash split: all score the same test ratings.
    assert runs[0]["test_ratings_scored"] == runs[1]["test_ratings_scored"] > 0
    assert runs[1]["test_ratings_scored"] == runs[2]["test_ratings_scored"]
    assert all(r["peak_memory_gib"] > 0 and r["rmse"] < 1.5 for r in runs)
    assert all(r["epoch_seconds"] > 0 and r["seconds_per_1m_ratings"] > 0 for r in runs)
    assert set(report["epoch_speedup_sparse_over_dense"]) == {str(runs[1]["ratings"])}


@pytest.mark.slow
def test_streaming_retrieval_benchmark_smoke(tmp_path):
    out = tmp_path / "streaming.json"
    out.write_text(json.dumps({"runs": ["the ranker's, kept"]}))
    data = str(tmp_path / "data")
    stdout = _smoke("streaming_retrieval.py", "--data-root", data, "--out", str(out))
    assert "peak GiB" in stdout
    report = json.loads(out.read_text())
    assert report["runs"] == ["the ranker's, kept"]
    run = report["two_tower"]["20000"]["run"]
    assert run["steps_run"] == run["steps_per_epoch"] > 0 and not run["epoch_bounded"]
    assert run["epoch_seconds"] > 0 and run["peak_memory_gib"] > 0
    assert run["index"] == "faiss-hnsw" and run["index_build_seconds"] >= 0
    assert run["metrics"]["users"] > 0 and run["metrics"]["ndcg@10"] > 0
