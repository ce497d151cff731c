"""The ratings store under contention: WAL, busy timeout and bounded retries."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from fastapi.testclient import TestClient
from test_serving import example_models

from movierec.serving import store as store_module
from movierec.serving.app import create_app
from movierec.serving.store import RatingStore, StoreBusyError, describe_url


def test_sqlite_file_uses_wal(tmp_path):
    store = RatingStore(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    store.upsert("u", "1", 4.0)
    store.close()
    with sqlite3.connect(tmp_path / "r.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_writers_lose_nothing(tmp_path):
    store = RatingStore(f"sqlite:///{tmp_path / 'r.sqlite3'}")
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


def test_a_database_locked_throughout_is_a_503_with_retry_after(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_S", 0.02)
    monkeypatch.setattr(store_module, "BUSY_ATTEMPTS", 2)
    path = tmp_path / "r.sqlite3"
    RatingStore(f"sqlite:///{path}").close()
    _, recommender = example_models()
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


def test_database_urls_are_shown_without_password():
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/ratings"
    assert "s3cret" not in describe_url(url) and "alice" in describe_url(url)
