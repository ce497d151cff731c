"""Answers from a saved model without Keras: exported tables, lazy networks, light imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from movierec.pipeline import Recommender
from movierec.testing import make_planted_dataset, write_ml_latest


@pytest.fixture(scope="module")
def models(example_pair):
    return example_pair[0]


def test_tables_are_exported_and_match_the_networks(models):
    fast = Recommender.load(models)
    assert fast.retrieval.user_queries is not None and fast.ranking.user_stars is not None
    slow = Recommender.load(models)
    slow.retrieval.user_queries = slow.ranking.user_stars = None
    for user in ("2", "3", "150"):
        a, b = fast.recommend(user, k=8), slow.recommend(user, k=8)
        assert [i.movie_id for i in a.items] == [i.movie_id for i in b.items]
        np.testing.assert_allclose(
            [i.blended for i in a.items], [i.blended for i in b.items], atol=1e-4
        )
        ra, rb = fast.rank(user, ["1", "31", "7"]), slow.rank(user, ["1", "31", "7"])
        np.testing.assert_allclose(
            [r.predicted_rating for r in ra], [r.predicted_rating for r in rb], atol=1e-4
        )
    # A known user's answers never read the networks; a visitor's do.
    assert not fast.retrieval.model_loaded and not fast.ranking.model_loaded
    fast.recommend(None, k=3, extra_ratings=[("1", 5.0)])
    assert fast.retrieval.model_loaded and fast.ranking.model_loaded


def _modules_after(argv: list[str], **env: str) -> tuple[int, set[str]]:
    """Exit status and which heavy modules ``movierec ARGV`` imported, in a fresh process
    (``env``: environment variables to set there; an empty value removes one)."""
    code = (
        "import sys, json\n"
        "from movierec.cli.main import main\n"
        "try:\n"
        f"    rc = main({argv!r})\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "heavy = [m for m in ('jax', 'keras', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(json.dumps([rc, heavy]), file=sys.stderr)\n"
    )
    environ = {**os.environ, **env}
    environ = {k: v for k, v in environ.items() if v}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
        env=environ,
    )
    rc, heavy = json.loads(done.stderr.strip().splitlines()[-1])
    return rc, set(heavy)


def test_query_commands_never_start_keras(models, tmp_path):
    m = ["--models", str(models)]
    for argv in (
        ["recommend", "--user", "2", *m],
        ["rank", "--user", "2", "--movies", "1", "40", *m],
        ["similar", "--movie", "1", *m],
    ):
        rc, heavy = _modules_after(argv)
        assert rc == 0 and not heavy & {"jax", "keras"}, (argv, heavy)
    # Title search and help need neither NumPy nor pandas.
    assert _modules_after(["search", "planted", *m]) == (0, set())
    assert _modules_after(["--help"]) == (0, set())
    # The default model directory is under the data home: finding it loads no pandas.
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models, target_is_directory=True)
    default = {"MOVIEREC_HOME": str(home), "MOVIEREC_MODELS": ""}
    assert _modules_after(["search", "planted"], **default) == (0, set())
    assert _modules_after(["search", " "], **default) == (2, set())
    assert _modules_after(["data", "--help"], **default) == (0, set())
    assert _modules_after(["train", "--help"]) == (0, set())
    data = write_ml_latest(make_planted_dataset(users=5), tmp_path / "data")
    rc, heavy = _modules_after(["data", "info", "--data", str(data)])
    assert rc == 0 and not heavy & {"jax", "keras"}


def test_index_build_reads_only_the_saved_candidates(models, tmp_path):
    """`index build` starts neither JAX nor Keras (no network, no training ratings) and
    the recommender accepts the index it wrote."""
    from movierec.errors import ModelError
    from movierec.models.artifacts import read_candidates

    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    rc, heavy = _modules_after(["index", "build", "--models", str(copy), "--kind", "faiss-hnsw"])
    assert rc == 0 and not heavy & {"jax", "keras"}, heavy
    assert Recommender.load(copy).index.name == "faiss-hnsw"
    with pytest.raises(ModelError, match="no candidates"):
        read_candidates(copy / "ranking")


def test_catalogue_search_matches_the_recommenders(models, tmp_path):
    import pandas as pd

    from movierec.models.catalogue import search_saved, write_catalogue_json

    rec = Recommender.load(models)
    for query, limit in (("planted 4", 20), ("PLANTED", 3), ("nothing like it", 5)):
        expected = [r.to_dict() for r in rec.search(query, limit)]
        found = search_saved(models / "retrieval", query, limit)
        assert [r["movie_id"] for r in found] == [r["movie_id"] for r in expected]
        assert all(a["year"] == b["year"] for a, b in zip(found, expected, strict=True))
    movies = make_planted_dataset().movies
    movies.loc[0, "year"] = pd.NA  # a title without a year is written as null
    write_catalogue_json(movies, tmp_path / "catalogue.json")
    rows = json.loads((tmp_path / "catalogue.json").read_text())
    assert rows[0][2] is None and rows[1][2] == movies.loc[1, "year"]


def test_search_of_a_model_without_catalogue_json_reads_the_parquet_catalogue(models, tmp_path):
    """A model saved before catalogue.json existed: the search reads the checked
    catalogue.parquet (same answers), without loading the model."""
    import shutil

    from movierec.errors import ModelError
    from movierec.models.catalogue import search_saved

    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    manifest_path = copy / "retrieval" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["artifacts"]["catalogue.json"]
    manifest_path.write_text(json.dumps(manifest))
    (copy / "retrieval" / "catalogue.json").unlink()
    for query, limit in (("planted 4", 20), ("PLANTED", 3), ("nothing like it", 5)):
        assert search_saved(copy / "retrieval", query, limit) == search_saved(
            models / "retrieval", query, limit
        )
    (copy / "retrieval" / "catalogue.parquet").write_bytes(b"not parquet")
    with pytest.raises(ModelError, match="catalogue.parquet: SHA-256 differs"):
        search_saved(copy / "retrieval", "planted", 5)


@pytest.mark.slow
def test_cli_benchmark_smoke(models, tmp_path):
    from pathlib import Path

    data = write_ml_latest(make_planted_dataset(users=5), tmp_path / "data")
    out = tmp_path / "cli.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "cli.py"
    done = subprocess.run(
        [sys.executable, str(script), "--models", str(models), "--data", str(data),
         "--user", "2", "--movie", "3", "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x numpy" in done.stdout
    report = json.loads(out.read_text())["commands"]
    assert len(report) == 7 and all(r["median_s"] > 0 for r in report.values())


def test_search_reads_only_a_catalogue_the_manifest_vouches_for(models, tmp_path):
    import shutil

    from movierec.errors import ModelError
    from movierec.models.catalogue import search_saved

    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    path = copy / "retrieval" / "catalogue.json"
    rows = json.loads(path.read_text())
    rows[0][1] = "Tampered Title"
    path.write_text(json.dumps(rows))
    # Not the listed bytes: the fully checked load refuses the changed model.
    with pytest.raises(ModelError, match="catalogue.json"):
        search_saved(copy / "retrieval", "tampered", 5)
