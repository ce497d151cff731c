"""``serve --retrain-every``: every outcome of a scheduled retrain shows in /metrics and
the log, only a verified one changes the live models, and a swap under load drops no
request (all traffic to 127.0.0.1, bounded in count and time)."""

from __future__ import annotations

import calendar
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from movierec.serving.app import create_app

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def live(example_pair, tmp_path) -> Path:
    """A writable copy of the session's example pair."""
    models = tmp_path / "models"
    shutil.copytree(example_pair[0], models)
    return models


def runs(client: TestClient) -> dict[str, float]:
    """``movierec_retrain_runs_total`` by result."""
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "movierec_retrain_runs_total"
    }


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def scheduled(live: Path, command: list[str], period: float = 3600.0):
    return create_app(live, f"sqlite:///{live / 'r.sqlite3'}", retrain_every=period,
                      retrain=command)  # fmt: skip


@pytest.mark.parametrize(
    ("code", "result", "logged"),
    [
        ("import sys; print('training failed: no data'); sys.exit(2)", "failed",
         "exit status 2: training failed: no data"),
        ("import sys; print('lineage differs'); sys.exit(3)", "rejected", "lineage differs"),
        ("import time; time.sleep(60)", "timeout", "still running after the period"),
    ],
)  # fmt: skip
def test_a_run_that_does_not_succeed_leaves_the_live_models(live, code, result, logged, caplog):
    app = scheduled(live, python(code))  # the schedule's own first run: in an hour
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "movierec.serving"):
        before = client.get("/version").json()
        assert before["retrain"]["last_result"] is None
        if result == "timeout":
            app.state.retrain.period = 1.0  # this run's limit
        started = time.perf_counter()
        assert client.portal.call(app.state.retrain.run_once) == result
        if result == "timeout":  # stopped at the period, not after the child's 60 s
            assert time.perf_counter() - started < 15
        after = client.get("/version").json()
        counted = runs(client)
    assert after["model_version"] == before["model_version"] and after["reloads"] == 0
    assert after["retrain"]["last_result"] == result and not after["retrain"]["running"]
    assert counted == {**dict.fromkeys(counted, 0.0), result: 1.0}
    [record] = [r for r in caplog.records if r.getMessage().startswith("retrain ")]
    assert record.levelno == logging.WARNING and logged in record.getMessage()
    assert "the live models keep serving" in record.getMessage()


def test_the_schedule_starts_runs_itself_and_shutdown_stops_a_running_child(live, tmp_path):
    pid_file = tmp_path / "child.pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    app = scheduled(live, python(code), period=3.0)
    with TestClient(app) as client:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the schedule started no run"
            time.sleep(0.1)
        assert client.get("/version").json()["retrain"]["running"] is True
        pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # stopped (and reaped) by the shutdown
        os.kill(pid, 0)


def test_a_run_whose_models_the_reload_refuses_leaves_the_live_models(live, caplog):
    """The child exits 0 but leaves a damaged model: the verified reload refuses it."""
    damage = f"open({str(live / 'retrieval' / 'movies.json')!r}, 'a').write(' ')"
    app = scheduled(live, python(damage))
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "movierec.serving"):
        before = client.get("/version").json()
        assert client.portal.call(app.state.retrain.run_once) == "reload_refused"
        assert client.get("/users/2/recommendations").status_code == 200
        assert client.get("/version").json()["model_version"] == before["model_version"]
        assert runs(client)["reload_refused"] == 1.0
    assert any("SHA-256 differs" in r.getMessage() for r in caplog.records)


def test_version_and_metrics_say_when_and_on_how_many_ratings_the_model_was_trained(live):
    from movierec.models.artifacts import read_manifest

    manifest = read_manifest(live / "retrieval")
    app = create_app(live, f"sqlite:///{live / 'r.sqlite3'}")
    with TestClient(app) as client:
        version = client.get("/version").json()
        text = client.get("/metrics").text
    assert version["trained_at"] == manifest["created"]
    assert version["trained_on_ratings"] == manifest["split"]["train_ratings"]
    assert version["trained_on_stored_ratings"] == 0 and version["retrain"] is None
    values = {
        (s.name, s.labels.get("origin")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("movierec_model_train")
    }
    created = calendar.timegm(time.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ"))
    assert values[("movierec_model_trained_timestamp_seconds", None)] == pytest.approx(created)
    assert values[("movierec_model_training_ratings", "all")] == version["trained_on_ratings"]
    assert values[("movierec_model_training_ratings", "stored")] == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_scheduled_retrain_swaps_in_under_load_without_a_failed_request(live, tmp_path):
    """A real `serve --retrain-every 60s`; requests from 4 threads (at most 20,000, at
    most 240 s, each thread pausing 20 ms between them, so that the low-priority child
    gets some CPU on a small machine) keep coming while the child trains and the new
    models go live."""
    port = free_port()
    db = f"sqlite:///{live / 'ratings.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:  # a file: a pipe nobody reads would fill with access lines
        server = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli.main", "serve", "--models", str(live),
             "--port", str(port), "--db", db, "--retrain-every", "60s", "--rate-limit", "off"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while "serving on" not in log.read_text():
            assert server.poll() is None and time.monotonic() - started < 120, log.read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as client:
            first = client.get("/version").json()
            for movie in range(1, 9):  # stored before the retrain starts, 60 s after start
                response = client.post(
                    "/users/newcomer/ratings", json={"movie_id": str(movie), "rating": 5.0}
                )
                assert response.status_code == 201
        statuses: list[int] = []
        versions: set[str] = set()
        stop = threading.Event()
        deadline = time.monotonic() + 240

        def hammer(path: str, body: dict | None) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                while not stop.is_set() and len(statuses) < 20_000:
                    if body is None:
                        response = client.get(path)
                    else:
                        response = client.post(path, json=body)
                    statuses.append(response.status_code)
                    if path == "/version":
                        versions.add(response.json()["model_version"])
                        if response.json()["reloads"] >= 1:
                            stop.set()
                    time.sleep(0.02)

        targets = [
            ("/users/2/recommendations", None),
            ("/recommendations", {"ratings": [{"movie_id": "3", "rating": 4.0}]}),
            ("/movies/5/similar", None),
            ("/version", None),
        ]
        threads = [threading.Thread(target=hammer, args=t, daemon=True) for t in targets]
        for thread in threads:
            thread.start()
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        with httpx.Client(base_url=base, timeout=30) as client:
            last = client.get("/version").json()
            known = client.get("/users/newcomer/ratings").json()["known_to_model"]
            metrics = client.get("/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert last["reloads"] >= 1, log.read_text()[-3000:]
    assert len(versions) >= 2  # requests were answered by the old and the new models
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert last["model_version"] != first["model_version"]
    assert last["trained_on_stored_ratings"] == 8
    assert last["trained_on_ratings"] == first["trained_on_ratings"] + 8
    assert last["trained_at"] > first["trained_at"] and known
    assert 'movierec_retrain_runs_total{result="ok"}' in metrics
    assert "retrain ok in" in log.read_text()
