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
    assert "ranking 'example' epoch 1/2: loss" in captured.err
    assert "ranking 'example' epoch 2/2: loss" in captured.err
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
    assert line == ("dcn member 2/2: stopped early after epoch 3 of 40 "
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
    assert "ordered by score = retrieval score + 1 x predicted stars" in lines[0]
    assert lines[1].split()[:5] == ["id", "title", "score", "stars", "retrieval"]
    scores = [float(line.split()[4]) for line in lines[3:]]  # "N Planted N (199x) score"
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert main(["rank", "--user", "2", "--movies", "1", "1", "2", "--json", "--models",
                 models]) == 0
    assert sorted(r["movie_id"] for r in json.loads(capsys.readouterr().out)) == ["1", "2"]
    assert main(["search", "no", "such", "film", "--models", models]) == 0
    assert capsys.readouterr().out == "no movies match 'no such film'\n"
