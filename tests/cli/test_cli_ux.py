"""What a person sees: help on every option, readable progress and data info, early checks."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from movierec.cli.main import build_parser, main
from movierec.testing import make_planted_dataset, write_ml_latest


def _actions(parser: argparse.ArgumentParser, path: str = "movierec"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help_text():
    missing = [f"{path} {a.option_strings or a.dest}" for path, a in _actions(build_parser())
               if not a.help]
    assert not missing


def test_training_progress_is_labelled_plain_lines_on_stderr(tmp_path, capsys):
    data = write_ml_latest(make_planted_dataset(), tmp_path / "data")
    argv = ["train", "ranking", "--model", "example", "--data", str(data),
            "--models", str(tmp_path / "m"), "--epochs", "2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err + captured.out and "\r" not in captured.err
    for epoch in (1, 2):  # labelled, with what each number is; no Keras bar
        assert f"ranking 'example': epoch {epoch}/2, loss " in captured.err
    assert "(mean squared error per rating, stars scaled to 0-1), rmse " in captured.err
    assert " stars, " in captured.err and "Epoch" not in captured.err
    assert "evaluating on 800 test ratings" in captured.err
    assert "Epoch" not in captured.out and "rmse" in captured.out  # results only on stdout
    assert main([*argv, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "rmse" in captured.out
    assert main([*argv, "--verbose"]) == 0
    assert "ranking 'example' settings: {\"embedding_dim\": 32, \"epochs\": 2" in (
        capsys.readouterr().err
    )


def test_dcn_announces_how_each_member_stopped():
    from movierec.ranking.rating_model import _stopping_line

    history = {"rmse": [1.1, 0.9, 0.8], "val_rmse": [1.0, 0.9, 0.95]}
    line = _stopping_line(1, 2, history, {"epochs": 40, "patience": 1})
    assert line == ("ranking 'dcn' member 2/2: stopped early after epoch 3 of 40 "
                    "(val_rmse not better for 1 epochs); kept epoch 2 (val_rmse 0.9000)")
    assert "ran all 3 epochs; kept epoch 2" in _stopping_line(0, 1, history, {"epochs": 3,
                                                                              "patience": 1})


def test_data_info_reads_like_a_summary(tmp_path, capsys):
    data = write_ml_latest(make_planted_dataset(), tmp_path / "data")
    assert main(["data", "info", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "4,000, 0.5 to 5 stars" in out and "rated between   2001-09-09 and" in out
    assert "timestamp" not in out and "{" not in out


def test_quickstart_checks_the_user_before_training(tmp_path, monkeypatch, capsys):
    import movierec.data as data

    monkeypatch.setattr(data, "fetch_ml100k", lambda *a, **k: tmp_path)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: make_planted_dataset())
    models = tmp_path / "models"
    assert main(["quickstart", "--user", "99999", "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert "unknown user id '99999'; MovieLens 100K has users 1-200" in err
    assert not models.exists()


@pytest.mark.parametrize("limit", ["0", "-3", "1001"])
def test_search_limit_is_checked(limit, tmp_path, capsys):
    assert main(["search", "x", "--limit", limit, "--models", str(tmp_path)]) == 2
    assert "--limit must be between 1 and 1000" in capsys.readouterr().err


@pytest.fixture(scope="module")
def models(example_pair):
    return str(example_pair[0])


def test_answers_show_their_order_drop_duplicates_and_say_no_match(models, capsys):
    import json

    assert main(["recommend", "--user", "2", "-k", "5", "--models", models]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ordered by blended" in lines[0]
    assert lines[1].startswith("blended = score + 1 x predicted_rating (the order); ")
    assert lines[2].split()[:5] == ["movie_id", "title", "blended", "score", "predicted_rating"]
    scores = [float(line.split()[4]) for line in lines[4:]]  # "N Planted N (199x) blended"
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert main(["rank", "--user", "2", "--movies", "1", "1", "2", "--json", "--models",
                 models]) == 0
    assert sorted(r["movie_id"] for r in json.loads(capsys.readouterr().out)) == ["1", "2"]
    assert main(["search", "no", "such", "film", "--models", models]) == 0
    assert capsys.readouterr().out == "no movies match 'no such film'\n"


@pytest.mark.parametrize(
    "argv, scores",
    [
        (["recommend", "--user", "2", "-k", "3"], ["blended", "score", "predicted_rating"]),
        (["rank", "--user", "2", "--movies", "1", "40"], ["predicted_rating"]),
        (
            ["recommend", "--user", "2", "-k", "3", "--explain"],
            ["blended", "score", "predicted_rating", "because"],
        ),
        (["similar", "--movie", "1", "-k", "3"], ["score", "co_raters", "shared_genres"]),
        (["search", "planted", "1"], []),
    ],
)
def test_tables_are_headed_by_the_json_keys_under_a_legend_of_each_score(
    models, capsys, argv, scores
):
    import json

    assert main([*argv, "--models", models, "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)[0].keys()
    assert main([*argv, "--models", models]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("movie_id"))
    headings = lines[header].split()
    assert headings == ["movie_id", "title", *scores, "genres"]
    assert set(headings) <= set(keys)
    legend = lines[header - 1] if scores else ""
    for score in scores:  # the legend says what every score column is
        assert f"{score} = " in legend
    if "predicted_rating" in scores:
        assert "predicted_rating = predicted stars (0.5 to 5)" in legend
    if argv[0] == "recommend":
        assert "score = retrieval score (a dot product: higher is better" in legend
    if argv[0] == "similar":  # the example retriever's similarity is a plain cosine
        assert legend.startswith(
            "score = cosine of the two movies' embeddings (-1 to 1, higher is more alike); "
        )


def test_similarity_legend_says_what_the_two_towers_score_is():
    from movierec.pipeline import similarity_meaning

    two_tower = similarity_meaning({"similar_rating_weight": 0.5, "item_item_rank": 64})
    assert "+ 0.5 x the cosine of the two movies' ratings" in two_tower
    assert "standard deviations" in two_tower and "no fixed bound" in two_tower
    assert "EASE" in similarity_meaning({"similar_rating_weight": 0, "item_item_rank": 64})
    assert "-1 to 1" in similarity_meaning({"similar_rating_weight": 0, "item_item_rank": 0})


def test_a_data_home_that_is_a_file_is_one_error_line(tmp_path, monkeypatch, capsys):
    from movierec.cli.main import MODELS_ENV

    monkeypatch.delenv(MODELS_ENV, raising=False)
    afile = tmp_path / "home"
    afile.write_text("not a directory")
    monkeypatch.setenv("MOVIEREC_HOME", str(afile))
    for argv in (["search", "star", "wars"], ["data", "info"], ["train", "--model", "example"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == (
            f"movierec: error: MOVIEREC_HOME={afile} is a file, not a directory; "
            "point MOVIEREC_HOME at a directory\n"
        )
    monkeypatch.setenv("MOVIEREC_HOME", str(afile / "below"))
    assert main(["search", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"movierec: error: MOVIEREC_HOME={afile / 'below'} cannot be created")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["search", "x", "--models", str(afile)]) == 2
    assert capsys.readouterr().err == f"movierec: error: --models {afile} is a file, not a " \
                                      "directory\n"


@pytest.mark.parametrize("query", ["", "   ", "\t"])
def test_an_empty_search_is_refused(query, tmp_path, capsys):
    """As the HTTP API answers 422, the CLI lists nothing: status 2 and one line."""
    assert main(["search", query, "--models", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "movierec: error: the search has no words; give words of the title, e.g. "
        "`movierec search star wars`\n"
    )


def test_too_few_ratings_are_refused_before_training(tmp_path, capsys):
    data = tmp_path / "three"
    data.mkdir()
    (data / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,100\n2,2,5.0,200\n3,3,3.0,300\n"
    )
    (data / "movies.csv").write_text(
        "movieId,title,genres\n1,A (1990),Drama\n2,B (1991),Comedy\n3,C (1992),Drama\n"
    )
    models = tmp_path / "models"
    argv = ["train", "--model", "example", "--models", str(models), "--epochs", "1"]
    assert main([*argv, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "movierec: error: data set three has 3 rating(s); training needs at least 10" in err
    assert "nan" not in err and not models.exists()
    # Enough ratings, but each user rated one movie: no test rating could be scored.
    singles = make_planted_dataset(users=12, per_user=1)
    assert main([*argv, "--data", str(write_ml_latest(singles, tmp_path / "singles"))]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 test rating(s) of the random split of data set singles" in err
    assert "users with at least 2 ratings" in err and not models.exists()


def test_metrics_that_cannot_be_computed_never_read_nan(capsys):
    import json
    import math

    import numpy as np

    from movierec.cli.output import print_json, print_metrics

    print_metrics("retrieval", {"users": 0, "recall@10": math.nan, "coverage@10": 0.0})
    out = capsys.readouterr().out
    assert "nan" not in out.lower()
    assert out.splitlines() == [
        "retrieval",
        "  users            0",
        "  recall@10        n/a",
        "  coverage@10      0.0000",
        "  (n/a: no test user to evaluate: none has both training ratings and a relevant "
        "test rating of a movie seen in training)",
    ]
    print_metrics("ranking", {"rmse": np.float32("nan"), "count": 0})
    assert capsys.readouterr().out.splitlines()[-1] == "  (n/a: no test ratings)"
    print_json({"ranking": {"rmse": math.nan, "k": [np.float64("nan"), 1.5]}})
    out = capsys.readouterr().out
    assert "NaN" not in out
    assert json.loads(out) == {"ranking": {"rmse": None, "k": [None, 1.5]}}


def test_python_dash_m_runs_the_command_line_with_its_exit_status(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "movierec", "--version"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("movierec ")
    bad = subprocess.run([sys.executable, "-m", "movierec", "search", "x", "--limit", "0"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MOVIEREC_HOME": str(tmp_path)})
    assert bad.returncode == 2 and "error" in bad.stderr and "Traceback" not in bad.stderr
