"""Concurrent answers: no model lock, warmed up at load, ready when it says so."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from movierec.pipeline import Recommender
from movierec.serving.app import warm_up
from movierec.testing import free_port, start_server


def answer(recommender: Recommender, user: str) -> list[tuple[str, float]]:
    items = recommender.recommend(user, 10).items
    return [(item.movie_id, round(item.predicted_rating, 5)) for item in items]


def test_parallel_reads_give_the_sequential_answers(example_models):
    _, recommender = example_models
    warm_up(recommender)
    users = recommender.retrieval.train.users.ids[:24]
    expected = {user: answer(recommender, user) for user in users}
    ranked = {user: recommender.rank(user, ["1", "2", "3", "40"]) for user in users[:4]}
    work = [random.Random(0).choice(users) for _ in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda user: (user, answer(recommender, user)), work))
        reranked = list(
            pool.map(lambda u: (u, recommender.rank(u, ["1", "2", "3", "40"])), users[:4] * 20)
        )
    assert all(result == expected[user] for user, result in got)
    for user, results in reranked:
        assert [r.predicted_rating for r in results] == [r.predicted_rating for r in ranked[user]]


def _compiles_during(requests) -> int:
    """How many programs JAX traces (compiles) while ``requests()`` runs."""
    import jax.monitoring

    traced = []

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        requests()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(traced)


def test_after_warm_up_the_first_answers_compile_nothing(example_models):
    """A program compiled on first use costs a request hundreds of milliseconds: after
    warm_up, no request kind compiles one (without it, the same requests do)."""
    models, _ = example_models

    def requests_of(recommender: Recommender):
        user = recommender.retrieval.train.users.ids[5]

        def run() -> None:
            recommender.recommend(user, 10, True, [("7", 4.0)])
            recommender.recommend(None, 10, True, [("7", 4.0)])
            recommender.rank(user, [str(m) for m in range(1, 31)])
            recommender.rank(None, [str(m) for m in range(1, 31)], [("7", 4.0)])

        return run

    cold = Recommender.load(models)
    assert _compiles_during(requests_of(cold)) > 0
    warm = Recommender.load(models)
    assert warm_up(warm) > 0
    assert _compiles_during(requests_of(warm)) == 0


@pytest.mark.slow
def test_serving_on_is_printed_only_when_ready(example_models, tmp_path):
    models, _ = example_models
    port = free_port()
    server = start_server(models, port, tmp_path / "r.sqlite3")
    try:
        line = server.stdout.readline()
        assert line.startswith(f"serving on http://127.0.0.1:{port}/"), line
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/health/ready").status_code == 200
        started = time.perf_counter()
        first = httpx.get(base + "/users/2/recommendations")
        assert first.status_code == 200 and time.perf_counter() - started < 0.5
    finally:
        server.terminate()
        server.wait(timeout=30)
