"""Typed model settings: defaults, checks, --set and --help-settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest

from movierec.cli.main import main
from movierec.models.registry import RANKERS, RETRIEVERS, model_class
from movierec.models.settings import ModelSettings, SettingsError, setting


@dataclass(frozen=True)
class Toy(ModelSettings):
    model_name: ClassVar[str] = "toy"

    epochs: int = setting(3, "passes", minimum=1)
    rate: float = setting(0.1, "step", above=0.0, maximum=1.0)
    flag: bool = setting(False, "a switch")
    mode: Literal["a", "b"] = setting("a", "a choice")
    either: bool | Literal["auto"] = setting("auto", "on, off or auto")


def test_check_fills_defaults_and_converts_only_exact_values():
    assert Toy.check({}) == {"epochs": 3, "rate": 0.1, "flag": False, "mode": "a", "either": "auto"}
    out = Toy.check({"epochs": 5.0, "rate": 1, "flag": True, "mode": "b", "either": False})
    assert out["epochs"] == 5 and isinstance(out["epochs"], int)
    assert out["rate"] == 1.0 and isinstance(out["rate"], float)
    assert out["either"] is False


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epoch": 1}, "toy has no setting 'epoch'; valid settings: epochs, rate, flag, mode"),
        ({"epochs": "{oops"}, "'epochs' expects an integer, got \"{oops\""),
        ({"epochs": 2.5}, "'epochs' expects an integer"),
        ({"epochs": True}, "'epochs' expects an integer, got true"),
        ({"epochs": 0}, "'epochs' must be >= 1, got 0"),
        ({"rate": 0.0}, "'rate' must be > 0, <= 1, got 0.0"),
        ({"rate": float("nan")}, "'rate' expects a number"),
        ({"flag": 1}, "'flag' expects true or false, got 1"),
        ({"mode": "c"}, "'mode' expects one of \"a\", \"b\", got \"c\""),
        ({"either": "yes"}, "'either' expects true or false or one of \"auto\""),
    ],
)
def test_bad_settings_say_what_was_expected(values, message):
    with pytest.raises(SettingsError) as error:
        Toy.check(values)
    assert message in str(error.value)


def test_every_model_has_typed_documented_settings():
    for kind, table in (("retrieval", RETRIEVERS), ("ranking", RANKERS)):
        for name in table:
            cls = model_class(kind, name)
            assert cls.settings_class is not None, name
            fields = cls.settings_class.fields()
            assert cls.default_settings() == {f.name: f.default for f in fields}
            assert all(f.help for f in fields), name
            # Every default passes its own checks.
            assert cls.settings_class.check(cls.default_settings()) == cls.default_settings()


@pytest.mark.parametrize(
    "pair, message",
    [
        ("no_such_key=1", "no setting 'no_such_key'; valid settings: embedding_dim"),
        ("epochs={oops", "setting 'epochs' expects an integer, got \"{oops\""),
        ("embedding_dim=-4", "setting 'embedding_dim' must be >= 1, got -4"),
        ("novalue", "--set expects KEY=VALUE"),
    ],
)
def test_cli_set_errors_are_one_line_and_exit_2(pair, message, capsys, tmp_path):
    code = main(["train", "ranking", "--set", pair, "--models", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("movierec: error:") and message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before loading data or training


def test_cli_set_with_both_kinds_goes_to_models_that_have_it(capsys, tmp_path):
    code = main(["train", "--model", "example", "--set", "dropout=0.1", "--models", str(tmp_path)])
    assert code == 2
    assert "no model here has a setting 'dropout'" in capsys.readouterr().err


def test_help_settings_lists_every_setting(capsys):
    assert main(["train", "ranking", "--help-settings", "dcn"]) == 0
    out = capsys.readouterr().out
    for f in model_class("ranking", "dcn").settings_class.fields():
        assert f.name in out and f.help in out
    assert "members" in out and ">= 1" in out
    assert main(["train", "--help-settings", "example"]) == 0
    out = capsys.readouterr().out
    assert "retrieval model 'example'" in out and "ranking model 'example'" in out
    assert main(["train", "--help-settings", "nope"]) == 2
