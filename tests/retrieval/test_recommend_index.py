"""The Recommender retrieves through a CandidateIndex; `movierec index build` adds faiss."""

from __future__ import annotations

import json

import numpy as np
import pytest

from movierec.cli.main import main
from movierec.errors import ModelError
from movierec.models.artifacts import load_model
from movierec.pipeline import Recommender
from movierec.retrieval.index import BruteForceIndex, FaissIndex
from movierec.testing import make_planted_dataset, write_ml_latest

USERS = [str(u) for u in range(1, 41)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Example models on a 300-movie planted catalogue, then a faiss index over it."""
    out = tmp_path_factory.mktemp("index")
    data = write_ml_latest(make_planted_dataset(users=200, movies=300, per_user=20), out / "data")
    root = out / "models"
    assert main(["train", "all", "--model", "example", "--data", str(data), "--models",
                 str(root), "--epochs", "5", "--set", "batch_size=64", "--quiet"]) == 0
    brute = Recommender.load(root)
    argv = ["index", "build", "--models", str(root), "--kind", "faiss-hnsw", "--m", "8"]
    assert main([*argv, "--ef-search", "16"]) == 0
    return root, brute, Recommender.load(root)


def _ids(answer) -> list[str]:
    return [item.movie_id for item in answer.items]


def test_brute_force_without_an_index_and_faiss_with_one(models):
    root, brute, approx = models
    assert isinstance(brute.index, BruteForceIndex) and brute.index.scorer == "numpy"
    assert isinstance(approx.index, FaissIndex) and approx.index.m == 8
    build = json.loads((root / "retrieval" / "index" / "build.json").read_text())
    assert build["kind"] == "faiss-hnsw" and build["settings"]["ef_search"] == 16
    assert not [p for p in (root / "retrieval").iterdir() if p.name.startswith(".")]


def test_faiss_recommendations_overlap_brute_force_and_exclude_history(models):
    _, brute, approx = models
    overlaps = []
    for stage in ("retrieval", "two-stage"):
        ranking = None if stage == "retrieval" else brute.ranking
        exact = Recommender(brute.retrieval, ranking, index=brute.index)
        fast = Recommender(approx.retrieval, ranking, index=approx.index)
        for user in USERS:
            a, b = _ids(exact.recommend(user, k=10)), _ids(fast.recommend(user, k=10))
            assert len(b) == 10
            assert not set(b) & set(fast.history(user))
            overlaps.append(len(set(a) & set(b)) / 10)
    assert np.mean(overlaps) >= 0.9
    # without exclusion, watched movies may come back (the index did the masking)
    seen = [
        set(_ids(approx.recommend(u, k=30, exclude_seen=False))) & set(approx.history(u))
        for u in USERS
    ]
    assert any(seen)


def test_recommend_output_unchanged_with_index(models, capsys):
    root, brute, _ = models
    assert main(["recommend", "--models", str(root), "--user", "3", "-k", "5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and {"movie_id", "title", "predicted_rating"} <= set(rows[0])


def test_index_from_other_embeddings_is_refused(models, tmp_path):
    root, _, _ = models
    build_file = root / "retrieval" / "index" / "build.json"
    original = build_file.read_text()
    build_file.write_text(json.dumps({**json.loads(original), "candidates": "0" * 16}))
    try:
        with pytest.raises(ModelError, match="rebuild"):
            Recommender.load(root)
    finally:
        build_file.write_text(original)
    saved = load_model(root / "retrieval")
    with pytest.raises(ModelError, match="does not fit"):
        Recommender(saved, index=BruteForceIndex().build(np.ones((5, 3), np.float32)))


def test_index_build_errors_exit_2(tmp_path, capsys):
    assert main(["index", "build", "--models", str(tmp_path)]) == 2
    assert "run `movierec train` first" in capsys.readouterr().err
