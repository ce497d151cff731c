"""What a person sees: help on every option, readable progress and data info, early checks."""

from __future__ import annotations

import argparse

import pytest
from conftest import make_planted_dataset, write_ml_latest

from movierec.cli.main import build_parser, main


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
        (["similar", "--movie", "1", "-k", "3"], ["score"]),
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
        assert legend == (
            "score = cosine of the two movies' embeddings (-1 to 1, higher is more alike)"
        )


def test_similarity_legend_says_what_the_two_towers_score_is():
    from movierec.pipeline import similarity_meaning

    two_tower = similarity_meaning({"similar_rating_weight": 0.5, "item_item_rank": 64})
    assert "+ 0.5 x the cosine of the two movies' ratings" in two_tower
    assert "standard deviations" in two_tower and "no fixed bound" in two_tower
    assert "EASE" in similarity_meaning({"similar_rating_weight": 0, "item_item_rank": 64})
    assert "-1 to 1" in similarity_meaning({"similar_rating_weight": 0, "item_item_rank": 0})
