"""Explanations and what similar movies share, over HTTP, on a history-aware model pair
(the session's small two-tower and dcn on planted data)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from movierec.serving.app import create_app


@pytest.fixture
def client(tmp_path, planted_two_stage):
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=planted_two_stage.engine
    )
    with TestClient(app) as client:
        yield client


def test_a_known_users_recommendations_name_their_own_ratings(client, planted_two_stage):
    history = {
        r.movie_id: r.predicted_rating for r in planted_two_stage.engine.training_ratings("2")
    }
    plain = client.get("/users/2/recommendations", params={"k": 5}).json()
    assert all(item["because"] is None for item in plain["items"])
    answer = client.get("/users/2/recommendations", params={"k": 5, "explain": True}).json()
    assert [m["movie_id"] for m in answer["items"]] == [m["movie_id"] for m in plain["items"]]
    assert "explain" in answer["timings_ms"]
    for item in answer["items"]:
        assert 1 <= len(item["because"]) <= 3
        for reason in item["because"]:
            assert reason["rating"] == history[reason["movie_id"]]
            assert reason["contribution"] > 0
            assert reason["title"].startswith("Planted")


def test_a_stored_rating_can_be_the_reason(client):
    # A new user known only by what they rated here: every reason is one of those.
    for movie, stars in (("1", 5.0), ("2", 5.0), ("3", 4.0), ("45", 1.0)):
        assert client.post("/users/web-new/ratings", json={"movie_id": movie, "rating": stars})
    answer = client.get("/users/web-new/recommendations", params={"explain": "true"}).json()
    named = {r["movie_id"] for item in answer["items"] for r in item["because"]}
    assert named and named <= {"1", "2", "3"}  # a 1-star rating raises nothing


def test_a_visitors_recommendations_name_the_ratings_they_sent(client):
    body = {"ratings": [{"movie_id": "33", "rating": 5.0}, {"movie_id": "40", "rating": 4.0}],
            "k": 4, "explain": True}  # fmt: skip
    answer = client.post("/recommendations", json=body).json()
    assert len(answer["items"]) == 4
    for item in answer["items"]:
        assert item["because"]
        assert {r["movie_id"] for r in item["because"]} <= {"33", "40"}
    assert client.post("/recommendations", json={**body, "explain": 1}).status_code == 422


def test_similar_movies_say_what_they_share(client):
    answer = client.get("/movies/1/similar", params={"k": 5}).json()
    source = set(answer["movie"]["genres"])
    for item in answer["items"]:
        assert isinstance(item["co_raters"], int) and item["co_raters"] >= 0
        assert set(item["shared_genres"]) == source & set(item["genres"])
    assert any(item["co_raters"] > 0 for item in answer["items"])


def test_the_openapi_document_describes_explain_and_the_reasons(client):
    document = client.get("/openapi.json").json()
    reason = document["components"]["schemas"]["Reason"]
    assert set(reason["required"]) == {"movie_id", "title", "rating", "contribution"}
    params = document["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"]
    assert "explain" in {p["name"] for p in params}
    assert "explain" in document["components"]["schemas"]["VisitorQuery"]["properties"]
