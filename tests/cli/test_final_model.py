"""The model that answers has learned every rating; its metrics stay held-out ones.

`movierec train` evaluates on the split, then refits on every rating (the default),
so no answer repeats a movie the user rated anywhere in the data; `--holdout` keeps
the split's model for `movierec evaluate`, `--no-eval` skips the evaluation; every
saved model names its data and `evaluate` refuses other ratings.
"""

from __future__ import annotations

import json
import shutil

import pytest

import movierec
from movierec.cli.main import main
from movierec.errors import ModelError
from movierec.pipeline import Recommender
from movierec.testing import make_planted_dataset, write_ml_latest

QUICK = ["--model", "example", "--epochs", "2", "--set", "batch_size=128", "--quiet",
         "--seed", "3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_ml_latest(make_planted_dataset(users=80), tmp_path_factory.mktemp("final") / "d")


@pytest.fixture(scope="module")
def refitted(data_dir, tmp_path_factory):
    models = tmp_path_factory.mktemp("refit") / "models"
    assert main(["train", "all", "--data", str(data_dir), "--models", str(models), *QUICK]) == 0
    return models


def _manifest(models, kind="retrieval"):
    return json.loads((models / kind / "manifest.json").read_text())


def test_no_user_is_recommended_a_movie_they_rated_anywhere(data_dir, refitted):
    ratings = movierec.load_data(data_dir).ratings
    rated = ratings.groupby("user_id")["movie_id"].agg(set)
    recommender = Recommender.load(refitted)
    for user, movies in rated.items():
        answer = recommender.recommend(user, k=10)
        assert len(answer.items) == 10
        assert not movies & {item.movie_id for item in answer.items}, user


def test_the_refit_saw_every_rating_and_the_manifest_says_where_metrics_came_from(
    data_dir, refitted
):
    total = len(movierec.load_data(data_dir).ratings)
    for kind in ("retrieval", "ranking"):
        manifest = _manifest(refitted, kind)
        assert manifest["split"]["method"] == "all"
        assert manifest["split"]["ratings"] == total
        assert manifest["split"]["holdout"]["method"] == "random"
        assert manifest["split"]["holdout"]["seed"] == 3
        assert manifest["data"]["ratings"] == total
        assert manifest["metrics"] and "refitted" in manifest["metrics_from"]
        assert manifest["data_source"] == str(data_dir.resolve())
        train = Recommender.load(refitted).retrieval.train
        assert len(train.rating) == total


def test_evaluate_shows_a_refitted_models_recorded_metrics_and_refuses_new_options(
    refitted, capsys
):
    assert main(["evaluate", "--models", str(refitted), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retrieval"]["ndcg@10"] == _manifest(refitted)["metrics"]["ndcg@10"]
    assert report["ranking"]["rmse"] == _manifest(refitted, "ranking")["metrics"]["rmse"]
    assert main(["evaluate", "--models", str(refitted), "-k", "5"]) == 2
    assert "--holdout" in capsys.readouterr().err


def test_no_eval_trains_on_everything_without_metrics(data_dir, tmp_path, capsys):
    models = tmp_path / "models"
    code = main(["train", "retrieval", "--data", str(data_dir), "--models", str(models),
                 "--no-eval", *QUICK])
    assert code == 0
    manifest = _manifest(models)
    assert manifest["split"] == {"method": "all", "ratings": manifest["data"]["ratings"]}
    assert manifest["metrics"] == {}
    assert main(["evaluate", "--models", str(models)]) == 2
    assert "no held-out part" in capsys.readouterr().err


def test_evaluate_refuses_ratings_other_than_the_models_own(data_dir, tmp_path, capsys):
    data = shutil.copytree(data_dir, tmp_path / "data")
    models = tmp_path / "models"
    code = main(["train", "retrieval", "--data", str(data), "--models", str(models),
                 "--holdout", *QUICK])
    assert code == 0
    capsys.readouterr()
    assert main(["evaluate", "retrieval", "--models", str(models), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["retrieval"]["ndcg@10"]
    assert scored == pytest.approx(_manifest(models)["metrics"]["ndcg@10"])
    lines = (data / "ratings.csv").read_text().splitlines()
    (data / "ratings.csv").write_text("\n".join(lines[:-1]) + "\n")  # one rating fewer
    assert main(["evaluate", "retrieval", "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("movierec: error:") and "other ratings" in err
    assert str(data.resolve()) in err and "Traceback" not in err


def test_a_model_trained_in_python_records_its_data_and_is_checked_too(data_dir, tmp_path,
                                                                       capsys):
    data = movierec.load_data(data_dir)
    split = movierec.split(data, seed=5)
    trained = movierec.train_model("retrieval", split, "example", settings={"epochs": 1},
                                   refit=False)
    models = tmp_path / "models"
    movierec.Recommender.from_models(trained).save(models)
    manifest = _manifest(models)
    assert manifest["data_source"] == str(data_dir.resolve())
    capsys.readouterr()
    assert main(["evaluate", "--models", str(models), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["retrieval"]["ndcg@10"]
    assert scored == pytest.approx(trained.metrics["ndcg@10"])
    other = write_ml_latest(make_planted_dataset(users=60, seed=9), tmp_path / "other")
    assert main(["evaluate", "--models", str(models), "--data", str(other)]) == 2
    assert "other ratings" in capsys.readouterr().err


def test_python_train_refits_by_default_and_evaluate_refuses_the_refit(data_dir):
    data = movierec.load_data(data_dir)
    split = movierec.split(data, seed=5)
    rec = movierec.train(split, retriever="example", ranker=None,
                         retrieval_settings={"epochs": 1})
    assert set(rec.metrics["retrieval"]) >= {"ndcg@10", "recall@10"}
    with pytest.raises(ModelError, match="refit=False"):
        movierec.evaluate(rec, split)
    user = str(data.ratings["user_id"].iloc[0])
    rated = set(data.ratings.loc[data.ratings["user_id"] == user, "movie_id"])
    assert not rated & set(rec.recommend(user, k=10)["movie_id"])
