"""Every command through the real entry point, on a small data set written to disk."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from movierec.cli.main import main
from movierec.testing import make_planted_dataset, write_ml_latest


@pytest.fixture(scope="module")
def trained(example_models):
    """Data on disk plus example models trained through `movierec train` (session-shared)."""
    models, _ = example_models
    return models.parent / "data", models


def test_train_writes_models_with_manifest(trained):
    _, models = trained
    for kind in ("retrieval", "ranking"):
        manifest = json.loads((models / kind / "manifest.json").read_text())
        assert manifest["kind"] == kind and manifest["model"] == "example"
        assert manifest["split"]["method"] == "random" and manifest["split"]["seed"] == 7
        assert manifest["settings"]["epochs"] == 4
        assert manifest["data"]["ratings"] == 4000
        assert manifest["data"]["source"]["ratings_sha256"]
        assert manifest["metrics"]


def test_recommend_json_excludes_watched(trained, capsys):
    _, models = trained
    assert main(["recommend", "--models", str(models), "--user", "2", "-k", "5", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 5
    assert all(item["title"].startswith("Planted") for item in items)
    train = pd.read_parquet(models / "retrieval" / "train.parquet")
    watched = set(train.loc[train["user_id"] == "2", "movie_id"])
    assert watched
    assert not watched & {item["movie_id"] for item in items}
    assert all(item["predicted_rating"] is not None for item in items)


@pytest.mark.parametrize("command", [["recommend", "--user", "2"], ["similar", "--movie", "1"]])
def test_offset_pages_and_exclude_leaves_out(trained, capsys, command):
    _, models = trained

    def ids(*extra: str) -> list[str]:
        assert main([*command, "--models", str(models), "--json", *extra]) == 0
        return [item["movie_id"] for item in json.loads(capsys.readouterr().out)]

    ten = ids("-k", "10")
    assert ids("-k", "5") + ids("-k", "5", "--offset", "5") == ten
    assert ids("-k", "8", "--exclude", ten[0], ten[3]) == [m for m in ten if m not in ten[:4:3]]


def test_recommend_table_and_include_seen(trained, capsys):
    _, models = trained
    assert main(["recommend", "--models", str(models), "--user", "2", "--include-seen"]) == 0
    out = capsys.readouterr().out
    assert "Top 10 movies for user 2" in out and "Planted" in out


def test_rank_orders_by_predicted_stars(trained, capsys):
    _, models = trained
    code = main(["rank", "--models", str(models), "--user", "2", "--movies", "1", "45", "--json"])
    assert code == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["predicted_rating"] for i in items] == sorted(
        (i["predicted_rating"] for i in items), reverse=True
    )
    assert {i["movie_id"] for i in items} == {"1", "45"}


def test_similar_and_search(trained, capsys):
    _, models = trained
    assert main(["similar", "--models", str(models), "--movie", "3", "-k", "4", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 4 and "3" not in {i["movie_id"] for i in items}
    assert main(["search", "--models", str(models), "planted", "12", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [i["movie_id"] for i in found] == ["12"]


def test_evaluate_reports_metrics(trained, capsys):
    _, models = trained
    assert main(["evaluate", "--models", str(models), "--json", "-k", "10", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Evaluating again rebuilds the recorded split: the metrics training recorded.
    for kind, metric in (("ranking", "rmse"), ("retrieval", "ndcg@10")):
        recorded = json.loads((models / kind / "manifest.json").read_text())["metrics"]
        assert report[kind][metric] == pytest.approx(recorded[metric], rel=1e-5)
    assert report["retrieval"]["ndcg@10"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recommend", "--user", "nobody"], "unknown user id 'nobody'"),
        (["similar", "--movie", "9999"], "unknown movie id '9999'"),
        (["rank", "--user", "2", "--movies", "1", "9999"], "unknown movie id '9999'"),
        (["recommend", "--user", "2", "-k", "0"], "-k must be between"),
        (["recommend", "--user", "2", "--offset", "-1"], "--offset must be 0 or more"),
        (["similar", "--movie", "1", "--offset", "-5"], "--offset must be 0 or more"),
        (["recommend", "--user", "2", "--exclude", "9999"], "unknown movie id '9999'"),
    ],
)
def test_bad_ids_exit_2_with_message(trained, capsys, argv, message):
    _, models = trained
    assert main([*argv, "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_models_and_data(tmp_path, capsys):
    assert main(["recommend", "--models", str(tmp_path / "none"), "--user", "1"]) == 2
    assert "no retrieval model" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--models", str(tmp_path)]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_malformed_data_names_file_and_line(tmp_path, capsys):
    data = write_ml_latest(make_planted_dataset(users=4), tmp_path / "bad")
    lines = (data / "ratings.csv").read_text().splitlines()
    lines[3] = "1,2,lots,1000"
    (data / "ratings.csv").write_text("\n".join(lines) + "\n")
    assert main(["data", "info", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "ratings.csv, line 4" in err


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "movierec.cli.main", "recommend", "--user", "1",
         "--models", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "movierec: error:" in result.stderr and "Traceback" not in result.stderr
