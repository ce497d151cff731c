"""The ratings store under contention: WAL, busy timeout and bounded retries."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import httpx
import pandas as pd
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from movierec.serving import store as store_module
from movierec.serving.app import create_app
from movierec.serving.store import (
    RatingStore,
    StoreBusyError,
    describe_url,
    read_feedback,
    read_ratings,
)
from movierec.testing import free_port, start_server

POSTGRES_ENV = "MOVIEREC_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL (`.ci/postgres` starts one and prints it). Skipped only
    off CI: in CI a missing server is a failure, not a skip."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL store tests: set {POSTGRES_ENV} (.ci/postgres)")
    pytest.skip(f"no PostgreSQL server: run `bash .ci/postgres` and set {POSTGRES_ENV}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty ratings database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ratings.sqlite3'}"
    url = postgres_url()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS ratings"))
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS feedback"))
    engine.dispose()
    return url


def test_writes_and_upserts(db_url):
    store = RatingStore(db_url)
    try:
        assert store.upsert("u1", "10", 4.0, timestamp=100) is True
        assert store.upsert("u1", "11", 2.5, timestamp=101) is True
        assert store.upsert("u1", "10", 1.0, timestamp=102) is False  # replaced
        assert store.upsert("é-user", "10", 5.0, timestamp=103) is True
        assert store.user_ratings("u1") == [("11", 2.5, 101), ("10", 1.0, 102)]
        assert store.user_ratings("é-user") == [("10", 5.0, 103)]
        assert store.user_ratings("nobody") == [] and store.count() == 3
    finally:
        store.close()
    stored = read_ratings(db_url)
    assert sorted(map(tuple, stored[["user_id", "movie_id"]].values)) == [
        ("u1", "10"),
        ("u1", "11"),
        ("é-user", "10"),
    ]
    assert str(stored["rating"].dtype) == "float32"


def test_concurrent_first_ratings_of_one_pair_make_one_row(db_url):
    store = RatingStore(db_url)
    barrier = threading.Barrier(8)
    created: list[bool] = []

    def first_rating(stars: float) -> None:
        barrier.wait()
        created.append(store.upsert("race", "1", stars))

    threads = [threading.Thread(target=first_rating, args=(1.0 + i % 5,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created.count(True) == 1 and len(created) == 8
    assert len(store.user_ratings("race")) == 1 and store.count() == 1
    store.close()


def test_service_and_train_use_the_database(example_models, db_url, tmp_path, capsys):
    from movierec.cli.main import main

    models, recommender = example_models
    with TestClient(create_app(db_url=db_url, recommender=recommender)) as client:
        for movie in ("1", "2", "3"):
            response = client.post("/users/web-pg/ratings", json={"movie_id": movie, "rating": 5})
            assert response.status_code == 201
        assert client.get("/users/web-pg/recommendations").json()["used_ratings"] == 3
    code = main(
        [
            "train",
            "retrieval",
            "--model",
            "example",
            "--data",
            str(models.parent / "data"),
            "--models",
            str(tmp_path / "m"),
            "--epochs",
            "1",
            "--quiet",
            "--ratings-db",
            db_url,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "adding 3 of 3 ratings stored in" in out
    if "@" in db_url:  # the password is never printed
        password = sqlalchemy.engine.make_url(db_url).password
        assert password and password not in out and "***" in out


def test_feedback_rows_are_stored_replaced_and_deleted(db_url):
    store = RatingStore(db_url)
    try:
        assert store.put_feedback("u1", "10", "watched", timestamp=100) is True
        assert store.put_feedback("u1", "11", "not-interested", timestamp=101) is True
        assert store.put_feedback("u1", "10", "not-interested", timestamp=102) is False
        assert store.put_feedback("u2", "10", "watched", timestamp=103) is True
        with pytest.raises(ValueError, match="unknown feedback type 'loved'"):
            store.put_feedback("u1", "12", "loved")
        assert store.user_feedback("u1") == [
            ("11", "not-interested", 101),
            ("10", "not-interested", 102),
        ]
        assert store.count_feedback() == 3 and store.count() == 0  # not ratings
        assert store.delete_feedback("u1", "10") == ("not-interested", 102)
        assert store.delete_feedback("u1", "10") is None
        assert store.user_feedback("u1") == [("11", "not-interested", 101)]
    finally:
        store.close()
    rows = read_feedback(db_url)
    assert sorted(map(tuple, rows[["user_id", "movie_id", "type"]].values)) == [
        ("u1", "11", "not-interested"),
        ("u2", "10", "watched"),
    ]


def test_a_database_from_before_feedback_is_upgraded_keeping_every_rating(db_url):
    """A ratings table as the store wrote it before feedback existed, with rows: opening
    it adds the feedback table and changes nothing else, as often as it is opened."""
    engine = sqlalchemy.create_engine(db_url)
    before = sqlalchemy.MetaData()
    old_ratings = store_module.ratings_table.to_metadata(before)
    before.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            old_ratings.insert(),
            [{"user_id": "old", "movie_id": str(m), "rating": 4.0, "timestamp": m} for m in (1, 2)],
        )
    assert not sqlalchemy.inspect(engine).has_table("feedback")
    engine.dispose()
    for _ in range(2):
        store = RatingStore(db_url)
        try:
            assert store.user_ratings("old")[:2] == [("1", 4.0, 1), ("2", 4.0, 2)]
            store.put_feedback("old", "3", "watched", timestamp=5)
            assert store.user_feedback("old") == [("3", "watched", 5)]
            store.upsert("old", "4", 2.0, timestamp=6)
        finally:
            store.close()
    assert read_ratings(db_url)["movie_id"].tolist() == ["1", "2", "4"]
    engine = sqlalchemy.create_engine(db_url)
    inspector = sqlalchemy.inspect(engine)
    assert inspector.has_table("feedback")
    assert {c["name"] for c in inspector.get_columns("ratings")} == {
        "id", "user_id", "movie_id", "rating", "timestamp"
    }
    engine.dispose()


def test_train_weighs_stored_feedback_by_its_settings(example_models, db_url, tmp_path, capsys):
    from movierec.cli.main import main
    from movierec.feedback import FeedbackSettings
    from movierec.pipeline import Recommender

    models, recommender = example_models
    with TestClient(create_app(db_url=db_url, recommender=recommender)) as client:
        client.post("/users/fb/ratings", json={"movie_id": "1", "rating": 5})
        for movie, kind in (("2", "watched"), ("3", "not-interested"), ("1", "watched")):
            answer = client.post("/users/fb/feedback", json={"movie_id": movie, "type": kind})
            assert answer.status_code == 201
    args = [
        "train", "retrieval", "--model", "example", "--data", str(models.parent / "data"),
        "--epochs", "1", "--quiet", "--ratings-db", db_url, "--no-eval",
    ]  # fmt: skip
    out_dir = tmp_path / "m"
    code = main([*args, "--models", str(out_dir), "--set", "feedback_watched_level=1.0"])
    assert code == 0
    out = capsys.readouterr().out
    # the rating of movie 1 wins over its watched row: 1 rating + 2 feedback rows
    assert "adding 3 of 3 ratings stored in" in out and "(2 of them" in out
    train = pd.read_parquet(out_dir / "retrieval" / "train.parquet")
    mine = train[train["user_id"] == "fb"].set_index("movie_id")["rating"].to_dict()
    assert mine == {"1": 5.0, "2": 5.0, "3": 0.5}  # on the data's 0.5-5 scale
    loaded = Recommender.load(out_dir)
    assert loaded.feedback == FeedbackSettings(feedback_watched_level=1.0)
    # not-interested left out of training by a null level
    code = main([*args, "--models", str(tmp_path / "n"), "--set",
                 "feedback_not_interested_level=null"])  # fmt: skip
    assert code == 0
    train = pd.read_parquet(tmp_path / "n" / "retrieval" / "train.parquet")
    assert set(train.loc[train["user_id"] == "fb", "movie_id"]) == {"1", "2"}


def test_feedback_settings_are_listed_and_checked(capsys):
    from movierec.cli.main import main

    assert main(["train", "retrieval", "--model", "example", "--help-settings"]) == 0
    out = capsys.readouterr().out
    for name in ("feedback_watched_level", "feedback_not_interested_level",
                 "feedback_similar", "feedback_push"):  # fmt: skip
        assert name in out
    assert main(["train", "retrieval", "--set", "feedback_push=1"]) == 2
    assert "add --ratings-db URL" in capsys.readouterr().err
    code = main(["train", "retrieval", "--ratings-db", "sqlite://", "--set",
                 "feedback_watched_level=2"])  # fmt: skip
    assert code == 2
    assert "feedback_watched_level' must be >= 0, <= 1, got 2" in capsys.readouterr().err


def test_sqlite_file_uses_wal(tmp_path):
    store = RatingStore(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    store.upsert("u", "1", 4.0)
    store.close()
    with sqlite3.connect(tmp_path / "r.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_writers_lose_nothing(db_url):
    store = RatingStore(db_url)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(40):
                store.upsert(f"user-{w}", str(i % 30), 1.0 + (i % 5))
        except BaseException as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 16 * 30
    # the last write of each pair wins: i = 30..39 rewrote movies 0..9
    assert [r for m, r, _ in store.user_ratings("user-3") if m == "2"] == [1.0 + 32 % 5]
    store.close()


def hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another process's writer: takes the write lock and keeps it for ``seconds``."""
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


def test_a_busy_database_is_waited_for_then_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "r.sqlite3"
    store = RatingStore(f"sqlite:///{path}")
    holder = hold_write_lock(path, 0.2)  # longer than the busy timeout, shorter than retries
    started = time.perf_counter()
    assert store.upsert("u", "1", 3.0) is True
    assert time.perf_counter() - started >= 0.05
    holder.join()
    assert store.user_ratings("u")[0][:2] == ("1", 3.0)
    store.close()


def test_a_database_locked_throughout_is_a_503_with_retry_after(
    example_models, tmp_path, monkeypatch
):
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_S", 0.02)
    monkeypatch.setattr(store_module, "BUSY_ATTEMPTS", 2)
    path = tmp_path / "r.sqlite3"
    RatingStore(f"sqlite:///{path}").close()
    _, recommender = example_models
    with TestClient(create_app(db_url=f"sqlite:///{path}", recommender=recommender)) as client:
        holder = hold_write_lock(path, 1.0)
        response = client.post("/users/2/ratings", json={"movie_id": "1", "rating": 4})
        holder.join()
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "busy" in response.json()["detail"]
        assert (
            client.post("/users/2/ratings", json={"movie_id": "1", "rating": 4}).status_code == 201
        )
    with pytest.raises(StoreBusyError):
        store = RatingStore(f"sqlite:///{path}")
        holder = hold_write_lock(path, 0.5)
        try:
            store.upsert("u", "1", 1.0)
        finally:
            holder.join()
            store.close()


def test_database_urls_are_shown_without_password(example_models, capsys):
    from movierec.cli.main import main

    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/ratings"
    assert "s3cret" not in describe_url(url) and "alice" in describe_url(url)
    models, _ = example_models
    # nothing listens on port 1: the error names the database without the password
    port = str(free_port())
    assert main(["serve", "--models", str(models), "--db", url, "--port", port]) == 2
    err = capsys.readouterr().err
    assert "cannot open database postgresql+psycopg://alice:***@127.0.0.1:1/ratings" in err
    assert "s3cret" not in err


@pytest.mark.slow
def test_acknowledged_feedback_survives_kill_9_and_counts_after_restart(example_models, tmp_path):
    """Every 201 is committed before it is sent: a server killed with SIGKILL right
    after loses none of the rows, and the restarted one answers with them."""
    models, _ = example_models
    db = tmp_path / "r.sqlite3"
    acknowledged: list[tuple[str, str]] = []

    def serve() -> tuple[object, str]:
        port = free_port()
        server = start_server(models, port, db)
        line = server.stdout.readline()
        assert line.startswith("serving on"), line
        return server, f"http://127.0.0.1:{port}"

    server, base = serve()
    try:
        with httpx.Client(base_url=base) as client:
            for i, movie in enumerate(str(m) for m in range(1, 41)):
                kind = "watched" if i % 2 else "not-interested"
                body = {"movie_id": movie, "type": kind}
                answer = client.post(f"/users/u{i % 4}/feedback", json=body)
                if answer.status_code == 201:
                    acknowledged.append((f"u{i % 4}", movie))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert len(acknowledged) == 40
    rows = read_feedback(f"sqlite:///{db}")
    assert set(zip(rows["user_id"], rows["movie_id"], strict=True)) == set(acknowledged)
    server, base = serve()
    try:
        mine = {m for u, m in acknowledged if u == "u1"}
        answer = httpx.get(f"{base}/users/u1/recommendations", params={"k": 60}).json()
        assert answer["used_feedback"] == len(mine)
        assert not mine & {m["movie_id"] for m in answer["items"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
