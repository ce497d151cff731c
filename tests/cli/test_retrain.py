"""``movierec retrain``: the live models trained again on their data plus the stored
ratings, verified, swapped in; refused input and failed verification change nothing."""

from __future__ import annotations

import fcntl
import json
import shutil
from contextlib import nullcontext
from pathlib import Path

import pytest

from movierec.cli.main import main
from movierec.cli.retrain import REJECTED_EXIT, train_argv
from movierec.models.artifacts import read_manifest
from movierec.pipeline import Recommender
from movierec.serving.retrain import parse_duration
from movierec.serving.store import RatingStore

KINDS = ("retrieval", "ranking")


@pytest.fixture
def live(example_pair, tmp_path) -> Path:
    """A writable copy of the session's example pair (planted data, seed 7, --holdout)."""
    models = tmp_path / "models"
    shutil.copytree(example_pair[0], models)
    return models


def artifacts(models: Path) -> dict[str, dict[str, str]]:
    """Each kind's manifest checksums and creation time: what identifies a trained model."""
    return {
        kind: {
            **read_manifest(models / kind)["artifacts"],
            "created": read_manifest(models / kind)["created"],
        }
        for kind in KINDS
    }


def leftovers(models: Path) -> list[str]:
    """Staging and old directories a retrain left behind."""
    return sorted(
        p.name
        for p in models.iterdir()
        if p.name.startswith((".retrain-", ".retrieval.", ".ranking."))
    )


def errors(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_no_models_directory_is_one_error(tmp_path, capsys):
    assert main(["retrain", "--models", str(tmp_path / "none"), "--nice", "0"]) == 2
    assert errors(capsys) == [
        f"movierec: error: no trained models in {tmp_path / 'none'}; run `movierec train` first"
    ]


def test_a_directory_without_a_retrieval_model_is_one_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["retrain", "--models", str(tmp_path / "empty"), "--nice", "0"]) == 2
    [line] = errors(capsys)
    assert "no retrieval model under" in line and "movierec train" in line


@pytest.mark.parametrize("nice", ["-1", "20", "ten"])
def test_a_bad_nice_is_refused(live, nice, capsys):
    before = artifacts(live)
    with pytest.raises(SystemExit) if nice == "ten" else nullcontext():
        assert main(["retrain", "--models", str(live), "--nice", nice]) == 2
    if nice != "ten":
        assert errors(capsys) == [f"movierec: error: --nice must be 0 to 19, got {nice}"]
    assert artifacts(live) == before


def test_a_bad_database_url_changes_nothing(live, capsys):
    before = artifacts(live)
    assert main(["retrain", "--models", str(live), "--nice", "0", "--ratings-db", "nope"]) == 2
    [line] = errors(capsys)
    assert line.startswith("movierec: error: not a database URL"), line
    assert artifacts(live) == before and leftovers(live) == []


def test_a_second_retrain_of_the_same_directory_is_refused(live, capsys):
    with open(live / ".retrain.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["retrain", "--models", str(live), "--nice", "0"]) == 2
    assert errors(capsys) == [f"movierec: error: another retrain of {live} is running"]


def test_a_model_trained_in_memory_cannot_be_retrained(live, capsys):
    manifest = json.loads((live / "retrieval" / "manifest.json").read_text())
    manifest["data_source"] = None
    (live / "retrieval" / "manifest.json").write_text(json.dumps(manifest))
    assert main(["retrain", "--models", str(live), "--nice", "0"]) == 2
    [line] = errors(capsys)
    assert "does not record where its data came from" in line


def test_the_command_line_is_the_one_that_trained_the_model(live):
    """The session pair was trained with `train all --model example --epochs 4 --set
    batch_size=128 --seed 7 --holdout`: the retrain asks for the same."""
    manifest = read_manifest(live / "ranking")
    argv = train_argv("ranking", manifest)
    assert argv[:6] == ["train", "ranking", "--model", "example", "--data", manifest["data_source"]]

    def value(option: str) -> str:
        return argv[argv.index(option) + 1]

    assert value("--seed") == "7" and value("--split") == "random"
    assert "--holdout" in argv and "--no-eval" not in argv
    sets = {argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"}
    assert {"epochs=4", "batch_size=128", "seed=7"} <= sets


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "10", "-5m", "1y", "5 m", "m", "400d", "1h30"])
def test_serve_refuses_a_bad_retrain_period_before_loading_anything(text, tmp_path, capsys):
    # no models there: had serve loaded them first, the error would say so
    args = ["serve", "--models", str(tmp_path / "none"), f"--retrain-every={text}"]
    assert main(args) == 2
    [line] = errors(capsys)
    assert line.startswith("movierec: error: --retrain-every "), line
    assert repr(text) in line


@pytest.mark.slow
def test_retrain_learns_the_stored_ratings_and_swaps_the_models_in(live, capsys):
    before = artifacts(live)
    store = RatingStore(f"sqlite:///{live / 'ratings.sqlite3'}")
    for movie in range(1, 11):  # a new user, liking taste 0's movies
        store.upsert("newcomer", str(movie), 5.0)
    store.close()
    old = Recommender.load(live)
    assert not old.knows_user("newcomer")
    assert main(["retrain", "--models", str(live), "--nice", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    trained_on = len(old.retrieval.train.rating) + 10
    assert "retrained in " in out and f"on {trained_on} ratings (10 stored" in out
    new = Recommender.load(live)
    assert new.knows_user("newcomer")
    assert len(new.retrieval.train.rating) == trained_on
    after = artifacts(live)
    assert all(after[k]["created"] >= before[k]["created"] for k in KINDS)
    assert after != before and leftovers(live) == []
    for kind in KINDS:  # the same data, model, settings and split as the live one
        was, now = read_manifest(old.retrieval.directory.parent / kind), read_manifest(live / kind)
        assert {k: now[k] for k in ("model", "settings", "data_source")} == {
            k: was[k] for k in ("model", "settings", "data_source")
        }


@pytest.mark.slow
def test_new_models_that_fail_verification_leave_the_live_ones(
    live, example_pair, tmp_path, capsys
):
    """The data the models came from changed since: the retrained models' lineage
    differs, so they are thrown away and the live ones stay, byte for byte."""
    data = tmp_path / "data"
    shutil.copytree(read_manifest(live / "retrieval")["data_source"], data)
    for kind in KINDS:  # the live models came from this copy
        path = live / kind / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["data_source"] = str(data)
        path.write_text(json.dumps(manifest))
    lines = (data / "ratings.csv").read_text().splitlines()
    (data / "ratings.csv").write_text("\n".join(lines[:-200]) + "\n")  # 200 ratings fewer
    before = artifacts(live)
    assert main(["retrain", "--models", str(live), "--nice", "0", "--quiet"]) == REJECTED_EXIT
    [line] = [x for x in errors(capsys) if x.startswith("movierec: error:")]
    assert "lineage differs from the live one's" in line and "data ratings" in line
    assert line.endswith(f"the live models in {live} are unchanged")
    assert artifacts(live) == before and leftovers(live) == []
    Recommender.load(live)  # still loads: nothing was half-swapped


def _staged(live: Path, created: dict[str, str]) -> Path:
    """A verified staging directory as a retrain writes it just before its swap."""
    staging = live / ".retrain-20261202T000000-1"
    for kind in KINDS:
        shutil.copytree(live / kind, staging / kind)
    (staging / "verified.json").write_text(json.dumps({"created": created}))
    return staging


def test_a_swap_cut_short_is_finished_by_the_next_retrain(live):
    from movierec.cli.retrain import _recover

    created = {kind: read_manifest(live / kind)["created"] for kind in KINDS}
    staging = _staged(live, created)
    shutil.rmtree(staging / "retrieval")  # retrieval was swapped in already ...
    shutil.rmtree(live / "ranking")  # ... and the live ranking renamed aside: then killed
    _recover(live)
    assert leftovers(live) == [] and (live / "ranking").is_dir()
    Recommender.load(live)


def test_a_swap_cut_between_its_first_two_renames_is_finished(live):
    from movierec.cli.retrain import _recover

    created = {kind: read_manifest(live / kind)["created"] for kind in KINDS}
    _staged(live, created)
    shutil.rmtree(live / "retrieval")  # the live retrieval renamed aside: then killed
    _recover(live)
    assert leftovers(live) == [] and (live / "retrieval").is_dir()
    Recommender.load(live)


def test_a_staged_pair_overtaken_by_a_training_by_hand_is_thrown_away(live):
    from movierec.cli.retrain import _recover

    before = artifacts(live)
    staging = _staged(live, {"retrieval": "2000-01-01T00:00:00Z", "ranking": "x"})
    shutil.rmtree(staging / "retrieval")  # "moved", but the live one is another model now
    (staging / "ranking" / "movies.json").write_text("[]")  # would break the live pair
    _recover(live)
    assert leftovers(live) == [] and artifacts(live) == before
    Recommender.load(live)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty ratings database of each kind (PostgreSQL: the test server that
    `.ci/postgres` starts, named by $MOVIEREC_TEST_POSTGRES_URL, as the store tests use)."""
    import os

    import sqlalchemy

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.sqlite3'}"
        return
    url = os.environ.get("MOVIEREC_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set MOVIEREC_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL server: run `bash .ci/postgres` and set "
                    "MOVIEREC_TEST_POSTGRES_URL")  # fmt: skip

    def drop() -> None:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            for table in ("ratings", "other"):
                connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()

    drop()
    yield url
    drop()


def test_the_snapshot_holds_every_table_as_of_one_moment(tmp_path, store_url):
    """Both models train on the snapshot: later writes stay out of it, and tables the
    store has besides ``ratings`` come along (SQLite through its online backup, other
    databases table by table in one transaction)."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

    from movierec.serving.store import make_engine, read_ratings, snapshot

    live = RatingStore(store_url)
    for movie in ("1", "2", "3"):
        live.upsert("u", movie, 4.0, 100)
    extra = Table("other", MetaData(), Column("id", Integer, primary_key=True),
                  Column("kind", String(16)))  # fmt: skip
    extra.create(live.engine)
    with live.engine.begin() as connection:
        connection.execute(insert(extra).values(kind="watched"))
    snapshot_url = snapshot(store_url, tmp_path / "snapshot.sqlite3")
    live.upsert("u", "4", 5.0, 200)  # after the snapshot
    live.close()
    assert snapshot_url.startswith("sqlite:///")
    assert sorted(read_ratings(snapshot_url)["movie_id"]) == ["1", "2", "3"]
    assert sorted(read_ratings(store_url)["movie_id"]) == ["1", "2", "3", "4"]
    engine = make_engine(snapshot_url)
    with engine.connect() as connection:
        assert connection.execute(select(extra.c.kind)).scalars().all() == ["watched"]
    engine.dispose()
