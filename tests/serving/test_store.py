"""The ratings store under contention: WAL, busy timeout and bounded retries."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from movierec.serving import store as store_module
from movierec.serving.app import create_app
from movierec.serving.store import RatingStore, StoreBusyError, describe_url, read_ratings
from movierec.testing import free_port

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
