"""The public Python API: the README's snippet, DataFrame answers, save and load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import movierec
from movierec.testing import make_planted_dataset, movie_taste, user_taste

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_snippet() -> str:
    """The first Python block of the README's "In Python" section."""
    section = README.read_text().split("## In Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def planted_ml100k(monkeypatch):
    """``load_data("ml-100k")`` gives the planted set instead of fetching MovieLens."""

    import movierec.data.loading as loading

    real = loading.load_dataset
    monkeypatch.setattr(
        loading,
        "load_dataset",
        lambda source="ml-100k": make_planted_dataset() if source == "ml-100k" else real(source),
    )


def test_import_is_light_and_help_lists_the_api():
    code = (
        "import sys, movierec; "
        "heavy = [m for m in ('jax', 'keras', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"load_data", "split", "train", "evaluate", "load", "Recommender"} <= set(dir(movierec))


@pytest.mark.slow
def test_readme_snippet_runs(planted_ml100k, tmp_path, monkeypatch, capsys):
    """Exactly the README's notebook snippet, on planted data: default models, one answer."""
    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    rec = namespace["rec"]
    top = rec.recommend("42", k=10)
    assert list(top.columns[:4]) == ["movie_id", "title", "year", "genres"]
    assert len(top) == 10 and top["movie_id"].iloc[0] in printed
    # Ordered by the blend it shows, and user 42 gets movies of their planted taste.
    assert top["blended"].is_monotonic_decreasing
    assert (top["movie_id"].map(movie_taste) == user_taste("42")).mean() >= 0.8


@pytest.fixture(scope="module")
def example_rec():

    data = make_planted_dataset()
    split = movierec.split(data, seed=0)
    rec = movierec.train(
        split,
        retriever="example",
        ranker="example",
        retrieval_settings={"epochs": 30, "batch_size": 64},
        ranking_settings={"epochs": 20, "batch_size": 64},
        seed=1,
        refit=False,  # evaluated again below on the same split
    )
    return data, split, rec


def test_answers_are_frames_and_survive_save_and_load(example_rec, tmp_path):
    _, split, rec = example_rec
    top = rec.recommend("2", k=5)
    assert isinstance(top, pd.DataFrame) and len(top) == 5
    assert not set(top["movie_id"]) & set(rec.history("2"))
    assert top["blended"].is_monotonic_decreasing
    assert set(rec.metrics) == {"retrieval", "ranking"} and "rmse" in rec.metrics["ranking"]

    rec.save(tmp_path / "models")
    again = movierec.load(tmp_path / "models")
    pd.testing.assert_frame_equal(again.recommend("2", k=5), top, atol=1e-5)
    report = movierec.evaluate(again, split, k=[10])
    assert report["ranking"]["rmse"] == pytest.approx(rec.metrics["ranking"]["rmse"], rel=1e-4)
    assert "ndcg@10" in report["retrieval"]


def test_rank_similar_search_and_ratings(example_rec):
    _, _, rec = example_rec
    ranked = rec.rank("2", ["3", "40", "3", "45"])
    assert list(ranked["movie_id"]).count("3") == 1 and len(ranked) == 3
    assert ranked["predicted_rating"].is_monotonic_decreasing
    like = rec.similar("1", k=4)
    assert len(like) == 4 and "1" not in set(like["movie_id"])
    assert list(rec.search("PLANTED 45")["movie_id"]) == ["45"]
    assert len(rec.search("planted", limit=3)) == 3
    assert rec.search("no such title").empty
    visitor = rec.recommend_for_ratings({"1": 5, "2": 5, "3": 4}, k=5)
    assert len(visitor) == 5 and not {"1", "2", "3"} & set(visitor["movie_id"])
    with pytest.raises(ValueError):
        rec.recommend_for_ratings({})


def test_train_model_alone_and_default_settings(example_rec):
    data, split, _ = example_rec
    settings = movierec.default_settings("ranking", "example")
    assert settings["epochs"] == 5
    ranker = movierec.train_model(
        "ranking", split, "example", settings={"epochs": 2, "batch_size": 64}, refit=False
    )
    assert ranker.settings["epochs"] == 2 and "rmse" in ranker.metrics
    assert set(movierec.evaluate(ranker, split)) == {"ranking"}


def test_training_shows_labelled_progress_by_default_and_verbose_0_silences_it(
    example_rec, monkeypatch, capfd
):
    import logging

    _, split, _ = example_rec
    logger = logging.getLogger("movierec")  # as a fresh process has it (the CLI sets it)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logger, "propagate", True)
    capfd.readouterr()
    fast = {"epochs": 2, "batch_size": 64}
    movierec.train_model("ranking", split, "example", settings=fast)
    captured = capfd.readouterr()
    assert "ranking 'example': epoch 1/2, loss " in captured.err
    assert "ranking 'example': epoch 2/2, loss " in captured.err and " stars, " in captured.err
    assert "Epoch" not in captured.err + captured.out and "\r" not in captured.err  # no Keras bar
    assert (logger.handlers, logger.level, logger.propagate) == ([], logging.NOTSET, True)
    movierec.train_model("ranking", split, "example", settings=fast, verbose=0)
    assert capfd.readouterr().err == ""


def test_recommend_and_similar_page_exclude_and_take_feedback(example_rec):
    from movierec.errors import MovierecError

    example_rec = example_rec[2]
    ten = example_rec.recommend("2", k=10)["movie_id"].tolist()
    assert example_rec.recommend("2", k=4, offset=6)["movie_id"].tolist() == ten[6:]
    without = example_rec.recommend("2", k=9, exclude=[ten[0]])["movie_id"].tolist()
    assert without == ten[1:]
    feedback = example_rec.recommend("2", k=8, watched=[ten[0]], not_interested=[ten[1]])
    assert not {ten[0], ten[1]} & set(feedback["movie_id"])
    visitor = example_rec.recommend_for_ratings({"1": 5.0}, k=5, offset=5, exclude=["2"])
    assert len(visitor) == 5 and not {"1", "2"} & set(visitor["movie_id"])
    alike = example_rec.similar("1", k=10)["movie_id"].tolist()
    assert example_rec.similar("1", k=5, offset=5)["movie_id"].tolist() == alike[5:]
    assert example_rec.similar("1", k=9, exclude=alike[:1])["movie_id"].tolist() == alike[1:]
    found = example_rec.search("planted", limit=100)["movie_id"].tolist()
    assert example_rec.search("planted", limit=10, offset=50)["movie_id"].tolist() == found[50:]
    with pytest.raises(MovierecError, match="offset must be"):
        example_rec.recommend("2", offset=-1)
