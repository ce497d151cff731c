"""Hostile input to the HTTP service: every bad request is a documented 4xx, never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from movierec.serving.app import create_app

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]

# (url, a JSON body with the placeholder X where a number goes)
POSTS = [
    ("/users/2/ratings", '{"movie_id": "1", "rating": X}'),
    ("/recommendations", '{"ratings": [{"movie_id": "1", "rating": X}]}'),
    ("/recommendations", '{"ratings": [{"movie_id": "1", "rating": 4}], "k": X}'),
    ("/rank", '{"ratings": [{"movie_id": "1", "rating": X}], "movie_ids": ["2"]}'),
    ("/rank", '{"user_id": X, "movie_ids": ["2"]}'),
    ("/users/2/ratings", '{"movie_id": X, "rating": 4}'),
]


@pytest.fixture
def client(example_models, tmp_path):
    _, recommender = example_models
    app = create_app(db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=recommender)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def post_raw(client, url: str, body: str):
    return client.post(url, content=body, headers={"Content-Type": "application/json"})


def assert_validation_body(response) -> list[dict]:
    """The documented HTTPValidationError shape: a list of {loc, msg, type}."""
    assert response.status_code == 422, response.text
    detail = json.loads(response.text)["detail"]  # strict JSON: no NaN tokens in it
    assert isinstance(detail, list) and detail
    for error in detail:
        assert isinstance(error["loc"], list) and isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    return detail


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("url, template", POSTS)
def test_non_finite_numbers_are_422_on_every_post(client, url, template, number):
    response = post_raw(client, url, template.replace("X", number))
    detail = assert_validation_body(response)
    assert any("inf" in e["msg"].lower() or "nan" in e["msg"].lower() for e in detail), detail
    assert client.get("/users/2/ratings").json()["ratings"] == []


@pytest.mark.parametrize(
    "body, given",
    [
        ({"movie_id": "1", "rating": True}, "True"),
        ({"movie_id": "1", "rating": "5"}, "'5'"),
        ({"movie_id": 1, "rating": 4}, "1"),
        ({"movie_id": "1", "rating": [4]}, None),
        ({"movie_id": "1", "rating": 5.0000001}, "5.0000001"),
        ({"movie_id": "1", "rating": 0.4999}, "0.4999"),
    ],
)
def test_ratings_are_strictly_typed_and_messages_name_the_value(client, body, given):
    detail = assert_validation_body(client.post("/users/2/ratings", json=body))
    if given is not None:
        assert any(given in error["msg"] for error in detail), detail
    assert client.get("/users/2/ratings").json()["ratings"] == []


@pytest.mark.parametrize(
    "url, body",
    [
        ("/recommendations", {"ratings": [{"movie_id": "1", "rating": 4}], "k": 5.5}),
        ("/recommendations", {"ratings": [{"movie_id": "1", "rating": 4}], "k": True}),
        ("/recommendations", {"ratings": [{"movie_id": "1", "rating": 4}], "k": "5"}),
        ("/recommendations", {"ratings": [{"movie_id": "1", "rating": 4}], "exclude_seen": 1}),
        ("/rank", {"user_id": "2", "movie_ids": [1]}),
        ("/rank", {"user_id": "2", "movie_ids": [""]}),
        ("/rank", {"user_id": 2, "movie_ids": ["1"]}),
    ],
)
def test_other_fields_are_strict_too(client, url, body):
    assert_validation_body(client.post(url, json=body))


def test_a_rating_on_the_scale_edges_is_accepted_as_given(client):
    for stars in (1, 5, 4.5):
        response = client.post("/users/2/ratings", json={"movie_id": "1", "rating": stars})
        assert response.status_code == 201 and response.json()["rating"] == stars


def test_off_scale_rating_in_a_list_points_at_the_item(client):
    body = {"ratings": [{"movie_id": "1", "rating": 4}, {"movie_id": "2", "rating": 7.5}]}
    detail = assert_validation_body(client.post("/recommendations", json=body))
    assert detail[0]["loc"] == ["body", "ratings", 1, "rating"]
    assert "7.5" in detail[0]["msg"] and "off the scale 0.5 to 5" in detail[0]["msg"]


@pytest.mark.parametrize("query", [" ", "%20%20", "+", "%09"])
def test_blank_search_is_422(client, query):
    detail = assert_validation_body(client.get(f"/movies?query={query}"))
    assert "no words" in detail[0]["msg"]


def test_ids_must_be_utf8(client):
    for raw in ("%FF", "%FE", "a%C3", "%C0%AF", "a%00b"):
        for method, url in (
            ("post", f"/users/{raw}/ratings"),
            ("get", f"/users/{raw}/ratings"),
            ("get", f"/movies/{raw}"),
            ("get", f"/movies?query={raw}" if raw != "a%00b" else "/movies/a%00b"),
        ):
            response = client.request(method, url, json={"movie_id": "1", "rating": 4})
            assert response.status_code == 422, (method, url, response.text)
            assert "not valid UTF-8" in response.json()["detail"][0]["msg"]
    assert client.get("/movies?query=a%00b").json()["items"] == []  # text, not an id
    # real non-ASCII ids are fine and stay distinct
    for user in ("%C3%A9", "%C3%A8"):
        assert (
            client.post(f"/users/{user}/ratings", json={"movie_id": "1", "rating": 4}).status_code
            == 201
        )
    assert client.get("/users/%C3%A9/ratings").json()["user_id"] == "é"
    assert len(client.get("/users/%C3%A8/ratings").json()["ratings"]) == 1


NONE_YET = {("get", "/users/{user_id}/ratings"), ("get", "/users/{user_id}/feedback")}


def test_every_error_status_is_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            assert {"400", "503"} <= codes, (method, path)
            if "{" in path or "requestBody" in operation:
                assert "422" in codes, (method, path)
            # unknown ids; an unknown user simply has no ratings or feedback yet
            if "{" in path and (method, path) not in NONE_YET:
                assert "404" in codes, (method, path)
            if method == "post":
                assert "413" in codes, (method, path)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Error"]
    assert schema["required"] == ["detail"]


def test_popular_never_lists_more_movies_than_the_catalogue(client):
    items = client.get("/popular", params={"k": 100}).json()["items"]
    assert len(items) == 60 and len({item["movie_id"] for item in items}) == 60


def test_a_whole_number_written_with_a_point_is_an_integer(client):
    body = {"ratings": [{"movie_id": "1", "rating": 4}], "k": 8.0}  # an integer in JSON Schema
    response = client.post("/recommendations", json=body)
    assert response.status_code == 200 and len(response.json()["items"]) == 8


@pytest.mark.parametrize("query", ["K=5", "k=5&debug=1", "=null", "query=star&query2=x"])
def test_unknown_query_parameters_are_422(client, query):
    path = "/movies" if query.startswith("query") else "/users/2/recommendations"
    detail = assert_validation_body(client.get(f"{path}?{query}"))
    assert detail[0]["loc"][0] == "query" and "unknown query parameter" in detail[0]["msg"]
    assert client.get("/users/2/recommendations?k=5&exclude_seen=false").status_code == 200
