"""What the web page asks the service for: popular movies, a known user's training ratings."""

from __future__ import annotations

from collections import Counter

from test_serving import client, watched  # noqa: F401  (fixture)


def test_popular_is_most_rated_first(client):  # noqa: F811
    items = client.get("/popular", params={"k": 5}).json()["items"]
    service = client.app.state.service
    train = service.recommender.retrieval.train
    counts = Counter(train.movies.id_of(int(m)) for m in train.movie_index)
    assert [i["movie_id"] for i in items] == [m for m, _ in counts.most_common(5)]
    assert client.get("/popular", params={"k": 0}).status_code == 422


def test_history_lists_a_known_users_training_ratings(watched, client):  # noqa: F811
    answer = client.get("/users/2/history").json()["items"]
    assert {i["movie_id"] for i in answer} == watched("2")
    stars = [i["predicted_rating"] for i in answer]
    assert stars == sorted(stars, reverse=True) and all(1 <= s <= 5 for s in stars)
    assert len(client.get("/users/2/history", params={"k": 3}).json()["items"]) == 3
    missing = client.get("/users/nobody/history")
    assert missing.status_code == 404 and "unknown user id" in missing.json()["detail"]


def test_favicon_is_served(client):  # noqa: F811
    response = client.get("/static/favicon.svg")
    assert response.status_code == 200 and "svg" in response.headers["content-type"]
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/").text


def test_popular_leaves_out_what_a_user_rated(watched, client):  # noqa: F811
    everything = [i["movie_id"] for i in client.get("/popular", params={"k": 100}).json()["items"]]
    seen = watched("2")
    answer = client.get("/popular", params={"k": 12, "user_id": "2"}).json()["items"]
    assert [i["movie_id"] for i in answer] == [m for m in everything if m not in seen][:12]
    # ratings stored here count too; an unknown user has rated nothing
    stored = client.post("/users/web-p/ratings", json={"movie_id": everything[0], "rating": 4})
    assert stored.status_code == 201
    mine = client.get("/popular", params={"k": 3, "user_id": "web-p"}).json()["items"]
    assert [i["movie_id"] for i in mine] == everything[1:4]
    nobody = client.get("/popular", params={"k": 3, "user_id": "nobody"}).json()["items"]
    assert [i["movie_id"] for i in nobody] == everything[:3]
    assert client.get("/popular", params={"user_id": ""}).status_code == 422
