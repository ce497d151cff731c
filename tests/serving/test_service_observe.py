"""/metrics in Prometheus text format and one JSON access-log line per request."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from movierec.serving.app import create_app

KEY = "observe-test-key-0123456789"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_and_status(example_models, tmp_path):
    _, recommender = example_models
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", recommender=recommender, api_keys=[KEY]
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(app) as client:
        for user in ("2", "3", "4"):
            assert client.get(f"/users/{user}/recommendations", headers=auth).status_code == 200
        assert client.get("/users/nobody/recommendations", headers=auth).status_code == 404
        assert client.get("/users/2/recommendations").status_code == 401
        client.post("/users/web/ratings", json={"movie_id": "1", "rating": 4}, headers=auth)
        for movie in ("2", "3"):
            body = {"movie_id": movie, "type": "watched"}
            client.post("/users/web/feedback", json=body, headers=auth)
        assert client.get("/metrics").status_code == 401
        response = client.get("/metrics", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    route = "/users/{user_id}/recommendations"

    def count(status: str, route: str = route) -> float:
        labels = (("method", "GET"), ("route", route), ("status", status))
        return got.get(("movierec_http_requests_total", labels), 0)

    assert count("200") == 3 and count("404") == 1
    # a refused request never reaches routing: counted, without its path as a label
    assert count("401", "unmatched") == 2  # the recommendations and /metrics without a key
    assert not any("nobody" in str(key) for key in got)
    bucket = (
        "movierec_http_request_duration_seconds_count",
        (("method", "GET"), ("route", route), ("status", "200")),
    )
    assert got[bucket] == 3
    assert got[("movierec_ratings_stored", ())] == 1
    assert got[("movierec_feedback_stored", ())] == 2
    assert got[("movierec_model_reloads", ())] == 0
    [info] = [key for key in got if key[0] == "movierec_model_info"]
    labels = dict(info[1])
    assert labels["retrieval"] == "example" and len(labels["model_version"]) == 16


def test_two_apps_keep_separate_counts(example_models, tmp_path):
    _, recommender = example_models
    apps = [
        create_app(db_url=f"sqlite:///{tmp_path / f'{i}.sqlite3'}", recommender=recommender)
        for i in range(2)
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        first.get("/movies/1")
        first.get("/movies/1")
        counts = [samples(c.get("/metrics").text) for c in (first, second)]
    key = (
        "movierec_http_requests_total",
        (("method", "GET"), ("route", "/movies/{movie_id}"), ("status", "200")),
    )
    assert counts[0][key] == 2 and key not in counts[1]


def test_access_log_is_one_json_line_without_secrets(example_models, tmp_path, caplog):
    _, recommender = example_models
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", recommender=recommender, api_keys=[KEY]
    )
    access = logging.getLogger("movierec.access")
    access.addHandler(caplog.handler)  # the CLI's `movierec` logger may not propagate
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="movierec.access"):
        response = client.post(
            "/users/web/ratings",
            json={"movie_id": "1", "rating": 4},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        client.get(
            "/movies", params={"query": "private words"}, headers={"Authorization": f"Bearer {KEY}"}
        )
    access.removeHandler(caplog.handler)
    records = {id(r): r for r in caplog.records if r.name == "movierec.access"}.values()
    lines = [r.getMessage() for r in records]
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["method"] == "POST" and entry["route"] == "/users/{user_id}/ratings"
    assert entry["status"] == 201 and entry["ms"] > 0 and entry["path"] == "/users/web/ratings"
    assert entry["request_id"] == response.headers["X-Request-ID"]
    for line in lines:
        assert KEY not in line and "query-text" not in line and "private" not in line
        assert '"rating"' not in line
