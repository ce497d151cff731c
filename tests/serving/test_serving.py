"""The HTTP service through FastAPI's TestClient, on small example models.

Models are trained once per session (``conftest.example_models``, shared with
the other service tests) and loaded once; each test builds its own app and database.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from movierec.cli.main import main
from movierec.ranking.blend import blend_scores
from movierec.serving.app import create_app
from movierec.serving.store import RatingStore, read_ratings
from movierec.testing import free_port, make_planted_dataset


@pytest.fixture
def client(example_models, tmp_path):
    _, recommender = example_models
    app = create_app(db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=recommender)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def watched(example_models):
    """The movies a user rated in the example models' training set, by user id."""
    models, _ = example_models
    train = pd.read_parquet(models / "retrieval" / "train.parquet")

    def of(user_id: str) -> set[str]:
        return set(train.loc[train["user_id"] == user_id, "movie_id"])

    return of


def ids(answer: dict) -> list[str]:
    return [item["movie_id"] for item in answer["items"]]


def test_health_is_503_until_models_are_loaded(example_models, tmp_path):
    _, recommender = example_models
    app = create_app(db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", recommender=recommender)
    response = TestClient(app).get("/health")  # no `with`: the lifespan has not run
    assert response.status_code == 503 and "not loaded" in response.json()["detail"]
    with TestClient(app) as client:
        health = client.get("/health").json()
    assert health["status"] == "ok" and health["movies"] == 60 and health["ranking"]
    models, _ = example_models
    manifest = json.loads((models / "retrieval" / "manifest.json").read_text())
    assert health["users"] == len(json.loads((models / "retrieval" / "users.json").read_text()))
    assert 150 < health["users"] <= manifest["data"]["users"]


def test_version_has_both_manifests(client):
    version = client.get("/version").json()
    for kind in ("retrieval", "ranking"):
        manifest = version[kind]
        assert manifest["kind"] == kind and manifest["model"] == "example"
        assert manifest["data"]["ratings"] == 4000 and manifest["split"]["seed"] == 7
        assert manifest["metrics"]


def test_user_recommendations_are_two_stage_and_skip_watched(watched, client):
    answer = client.get("/users/2/recommendations", params={"k": 5}).json()
    assert answer["known_to_model"] and answer["used_ratings"] == 0
    assert len(answer["items"]) == 5
    years = make_planted_dataset().movies.set_index("movie_id")["year"]
    for item in answer["items"]:
        assert item["title"].startswith("Planted") and item["genres"]
        assert item["year"] == years[item["movie_id"]]
        assert isinstance(item["score"], float) and 0.5 <= item["predicted_rating"] <= 5
    # Best first by the two stages' blend of retrieval score and predicted stars.
    final = blend_scores(np.array([item["score"] for item in answer["items"]]),
                         np.array([item["predicted_rating"] for item in answer["items"]]))
    assert (np.diff(final) <= 1e-6).all()
    assert set(answer["timings_ms"]) == {"store", "retrieval", "ranking", "total"}
    assert not watched("2") & set(ids(answer))
    seen = client.get("/users/2/recommendations", params={"k": 60, "exclude_seen": False}).json()
    assert watched("2") <= set(ids(seen))


def test_a_stored_rating_counts_at_once(watched, client):
    top = ids(client.get("/users/2/recommendations", params={"k": 5}).json())[0]
    response = client.post("/users/2/ratings", json={"movie_id": top, "rating": 4.5})
    assert response.status_code == 201
    assert response.json()["created"] is True and response.json()["rating"] == 4.5
    answer = client.get("/users/2/recommendations", params={"k": 5}).json()
    assert answer["used_ratings"] == 1 and top not in ids(answer)
    mine = client.get("/users/2/ratings").json()
    assert mine["known_to_model"] and mine["history"] == len(watched("2"))
    assert [(m["movie_id"], m["predicted_rating"]) for m in mine["ratings"]] == [(top, 4.5)]


def test_new_user_gets_recommendations_from_stored_ratings(client):
    assert client.get("/users/web-new/recommendations").status_code == 404
    assert client.get("/users/web-new/ratings").json()["ratings"] == []
    for movie in ("1", "2", "3"):
        assert client.post("/users/web-new/ratings", json={"movie_id": movie, "rating": 5})
    # rating again replaces the old rating
    again = client.post("/users/web-new/ratings", json={"movie_id": "3", "rating": 2})
    assert again.status_code == 201 and again.json()["created"] is False
    answer = client.get("/users/web-new/recommendations", params={"k": 10}).json()
    assert not answer["known_to_model"] and answer["used_ratings"] == 3
    assert len(answer["items"]) == 10 and not {"1", "2", "3"} & set(ids(answer))
    stars = {m["movie_id"]: m["predicted_rating"]
             for m in client.get("/users/web-new/ratings").json()["ratings"]}
    assert stars == {"1": 5.0, "2": 5.0, "3": 2.0}


def test_visitor_recommendations_from_ratings_only(client):
    body = {"ratings": [{"movie_id": "1", "rating": 5}, {"movie_id": "40", "rating": 1}], "k": 7}
    answer = client.post("/recommendations", json=body).json()
    assert answer["user_id"] is None and answer["used_ratings"] == 2
    assert len(answer["items"]) == 7 and not {"1", "40"} & set(ids(answer))
    assert all(item["predicted_rating"] is not None for item in answer["items"])


def test_movies_search_lookup_and_similar(client):
    found = client.get("/movies", params={"query": "PLANTED 12"}).json()
    assert ids(found) == ["12"]
    assert len(client.get("/movies", params={"query": "planted", "limit": 5}).json()["items"]) == 5
    assert client.get("/movies", params={"query": "no such film"}).json()["items"] == []
    movie = client.get("/movies/3").json()
    assert movie["title"] == "Planted 3 (1993)" and movie["genres"] == ["Action", "Sci-Fi"]
    similar = client.get("/movies/3/similar", params={"k": 4}).json()
    assert similar["movie"]["movie_id"] == "3"
    assert len(similar["items"]) == 4 and "3" not in ids(similar)
    scores = [item["score"] for item in similar["items"]]
    assert scores == sorted(scores, reverse=True)
    # What the scores are: the example retriever's similarity is the embeddings' cosine.
    assert similar["score_meaning"].startswith("score = cosine of the two movies' embeddings")
    assert all(-1 - 1e-6 <= s <= 1 + 1e-6 for s in scores)


def test_rank_for_user_and_for_ratings(client):
    for body in ({"user_id": "2", "movie_ids": ["1", "45", "7"]},
                 {"ratings": [{"movie_id": "1", "rating": 5}], "movie_ids": ["1", "45", "7"]}):
        items = client.post("/rank", json=body).json()["items"]
        assert {i["movie_id"] for i in items} == {"1", "45", "7"}
        stars = [i["predicted_rating"] for i in items]
        assert stars == sorted(stars, reverse=True)


BIG = {"ratings": [{"movie_id": "1", "rating": 5}] * 3000}


@pytest.mark.parametrize(
    "method, url, body, status, message",
    [
        ("get", "/users/nobody/recommendations", None, 404, "unknown user id 'nobody'"),
        ("get", "/movies/9999", None, 404, "unknown movie id '9999'"),
        ("get", "/movies/9999/similar", None, 404, "unknown movie id '9999'"),
        ("post", "/users/2/ratings", {"movie_id": "9999", "rating": 3}, 404, "unknown movie"),
        ("post", "/rank", {"user_id": "nobody", "movie_ids": ["1"]}, 404, "unknown user"),
        ("post", "/rank", {"user_id": "2", "movie_ids": ["1", "9999"]}, 404, "unknown movie"),
        ("post", "/recommendations", {"ratings": [{"movie_id": "x", "rating": 3}]}, 404,
         "unknown movie id 'x'"),
        ("get", "/users/2/recommendations?k=0", None, 422, "greater than or equal to 1"),
        ("get", "/users/2/recommendations?k=101", None, 422, "less than or equal to 100"),
        ("get", "/users/2/recommendations?k=ten", None, 422, "valid integer"),
        ("get", "/movies/3/similar?k=1000", None, 422, "less than or equal to 100"),
        ("post", "/recommendations", {"ratings": [{"movie_id": "1", "rating": 3}], "k": 0}, 422,
         "greater than or equal"),
        ("post", "/recommendations", {"ratings": []}, 422, "at least 1 item"),
        ("post", "/users/2/ratings", {"movie_id": "1", "rating": 6}, 422, "off the scale"),
        ("post", "/users/2/ratings", {"movie_id": "1", "rating": 0}, 422, "off the scale"),
        ("post", "/users/2/ratings", {"movie_id": "1", "rating": "good"}, 422, "valid number"),
        ("post", "/users/2/ratings", {"movie_id": "1"}, 422, "Field required"),
        ("post", "/users/2/ratings", {"movie_id": "1", "rating": 3, "x": 1}, 422, "Extra"),
        ("post", "/recommendations", {"ratings": [{"movie_id": "1", "rating": 9}]}, 422,
         "off the scale"),
        ("post", "/rank", {"movie_ids": ["1"]}, 422, "user_id or a non-empty list"),
        ("post", "/rank", {"user_id": "2", "movie_ids": []}, 422, "at least 1"),
        ("post", "/users/2/ratings", b'{"movie_id": "1", "rating": ', 422, "JSON"),
        ("post", "/recommendations", b"not json", 422, "JSON"),
        ("get", "/movies", None, 422, "Field required"),
        ("post", "/recommendations", BIG, 413, "larger than 65536 bytes"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, method, url, body, status, message):
    if isinstance(body, bytes):
        response = client.request(method, url, content=body,
                                  headers={"Content-Type": "application/json"})
    else:
        response = client.request(method, url, json=body)
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json()["detail"])


def test_oversized_body_without_length_is_refused(client):
    def chunks():  # chunked transfer: no Content-Length to check up front
        yield b'{"ratings": ['
        for _ in range(3000):
            yield b'{"movie_id": "1", "rating": 5},'
        yield b'{"movie_id": "1", "rating": 5}]}'

    response = client.post("/recommendations", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_ratings_persist_across_restart(example_models, tmp_path):
    models, recommender = example_models
    url = f"sqlite:///{tmp_path / 'persist.sqlite3'}"
    with TestClient(create_app(db_url=url, recommender=recommender)) as first:
        assert first.post("/users/web-p/ratings", json={"movie_id": "5", "rating": 4}).status_code
    with TestClient(create_app(db_url=url, recommender=recommender)) as second:
        mine = second.get("/users/web-p/ratings").json()["ratings"]
        assert [(m["movie_id"], m["predicted_rating"]) for m in mine] == [("5", 4.0)]
        answer = second.get("/users/web-p/recommendations").json()
        assert answer["used_ratings"] == 1 and "5" not in ids(answer)
    stored = read_ratings(url)
    assert list(stored.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert stored[["user_id", "movie_id"]].values.tolist() == [["web-p", "5"]]
    assert str(stored["rating"].dtype) == "float32" and str(stored["timestamp"].dtype) == "int64"


def test_default_database_lives_beside_the_models(example_models, tmp_path):
    models, recommender = example_models
    app = create_app(models, recommender=recommender)
    with TestClient(app) as client:
        client.post("/users/web-d/ratings", json={"movie_id": "5", "rating": 4})
    db = models / "ratings.sqlite3"
    assert db.is_file()
    assert "web-d" in set(read_ratings(f"sqlite:///{db}")["user_id"])


def test_openapi_docs_and_page(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/version", "/users/{user_id}/recommendations", "/recommendations",
                 "/users/{user_id}/ratings", "/movies", "/movies/{movie_id}",
                 "/movies/{movie_id}/similar", "/rank"):
        assert path in paths
    assert "swagger" in client.get("/docs").text.lower()
    page = client.get("/")
    assert page.status_code == 200 and "<title>movierec</title>" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_train_takes_ratings_from_the_service_database(example_models, tmp_path, capsys):
    models, _ = example_models
    data = models.parent / "data"
    url = f"sqlite:///{tmp_path / 'stored.sqlite3'}"
    store = RatingStore(url)
    for movie in ("1", "2", "3"):
        store.upsert("web-t", movie, 5.0)
    store.upsert("web-t", "no-such-movie", 5.0)
    store.close()
    out = tmp_path / "models"
    code = main(["train", "retrieval", "--model", "example", "--data", str(data),
                 "--models", str(out), "--epochs", "1", "--quiet", "--ratings-db", url])
    assert code == 0
    assert "adding 3 of 4 ratings stored in" in capsys.readouterr().out
    manifest = json.loads((out / "retrieval" / "manifest.json").read_text())
    assert manifest["split"]["stored_ratings"]["count"] == 3
    train = pd.read_parquet(out / "retrieval" / "train.parquet")
    assert sorted(train.loc[train["user_id"] == "web-t", "movie_id"]) == ["1", "2", "3"]


def test_serve_reports_missing_models(tmp_path, capsys):
    assert main(["serve", "--models", str(tmp_path / "none"), "--port", str(free_port())]) == 2
    assert "no retrieval model" in capsys.readouterr().err
