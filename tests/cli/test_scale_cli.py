"""`movierec data synth` and Parquet shards as a data source for every command."""

from __future__ import annotations

import json

from movierec.cli.main import main
from movierec.data import load_dataset


def test_synth_writes_shards_that_load_dataset_reads(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["data", "synth", "--users", "60", "--movies", "80", "--ratings", "900"]
    assert main([*argv, "--seed", "3", "--out", str(out), "--shard-size", "400"]) == 0
    assert "900 ratings" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("ratings-*.parquet")) == [
        f"ratings-0000{i}.parquet" for i in range(3)
    ]
    dataset = load_dataset(out)
    assert len(dataset.ratings) == 900
    assert dataset.ratings["user_id"].nunique() == 60
    assert not dataset.ratings.duplicated(["user_id", "movie_id"]).any()
    # one level up is accepted too, as for the MovieLens layouts
    assert load_dataset(tmp_path).name == dataset.name

    assert main(["data", "info", "--data", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == dataset.name


def test_synth_same_seed_same_data(tmp_path):
    for name in ("a", "b"):
        argv = ["data", "synth", "--users", "30", "--movies", "40", "--ratings", "200"]
        assert main([*argv, "--seed", "5", "--out", str(tmp_path / name)]) == 0
    a, b = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "b")
    assert a.ratings.equals(b.ratings)


def test_synth_bad_sizes_exit_2(tmp_path, capsys):
    argv = ["data", "synth", "--users", "50", "--movies", "40", "--ratings", "10"]
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert "ratings must be between" in capsys.readouterr().err


def test_unrecognised_directory_mentions_parquet(tmp_path, capsys):
    (tmp_path / "meta.json").write_text("{}")
    assert main(["data", "info", "--data", str(tmp_path)]) == 2
    assert "ratings-*.parquet" in capsys.readouterr().err
