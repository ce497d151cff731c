"""Feedback types ("watched", "not-interested") and paged lists, through the engine and
the HTTP service, on the session's example models (planted data, 60 movies)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from movierec.feedback import FeedbackSettings, level_stars
from movierec.pipeline import Recommender
from movierec.serving.app import create_app

USER = "2"  # a planted user of taste 0 (likes movies 1-30)


@pytest.fixture(scope="module")
def engine(example_pair) -> Recommender:
    models = example_pair[0]
    return Recommender.load(models)


@pytest.fixture
def client(engine, tmp_path):
    app = create_app(db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=engine)
    with TestClient(app) as client:
        yield client


def catalogue(engine: Recommender) -> set[str]:
    return set(engine.retrieval.train.movies.ids)


def walk(fetch, page: int) -> list[str]:
    """Every id of a list, fetched ``page`` at a time until a page comes back empty."""
    seen: list[str] = []
    for _ in range(1000):
        got = fetch(len(seen), page)
        if not got:
            return seen
        assert len(got) <= page
        seen += got
    raise AssertionError("the list never ended")


def small_blocks(engine: Recommender, candidates: int) -> Recommender:
    """The same models re-ranking blocks of ``candidates``: pages cross many blocks."""
    return Recommender(engine.retrieval, engine.ranking, num_candidates=candidates)


@pytest.mark.parametrize("candidates", [200, 16, 7])
@pytest.mark.parametrize("page", [1, 7, 10])
def test_recommendation_pages_list_every_unseen_movie_once_in_one_order(engine, candidates, page):
    rec = small_blocks(engine, candidates)
    unseen = catalogue(engine) - set(rec.history(USER))

    def fetch(offset, k):
        return [m.movie_id for m in rec.recommend(USER, k, offset=offset).items]

    pages = walk(fetch, page)
    assert len(pages) == len(set(pages)) and set(pages) == unseen
    # one list, whatever the page size: the pages are cut from the same order
    assert pages == walk(fetch, 13)
    whole = [m.movie_id for m in rec.recommend(USER, len(unseen)).items]
    assert pages == whole


def test_first_page_is_the_answer_without_paging(engine):
    plain = engine.recommend(USER, 10).items
    paged = engine.recommend(USER, 10, offset=0, exclude=()).items
    assert [m.movie_id for m in plain] == [m.movie_id for m in paged]
    assert [m.blended for m in plain] == [m.blended for m in paged]


def test_pages_with_not_interested_and_exclude_still_cover_the_rest_once(engine):
    rec = small_blocks(engine, 16)
    top = [m.movie_id for m in rec.recommend(USER, 3).items]
    left = catalogue(engine) - set(rec.history(USER)) - set(top)

    def fetch(offset, k):
        answer = rec.recommend(
            USER, k, offset=offset, exclude=[top[0]], watched=[top[1]], not_interested=[top[2]]
        )
        return [m.movie_id for m in answer.items]

    pages = walk(fetch, 9)
    assert len(pages) == len(set(pages)) and set(pages) == left


def test_similar_popular_and_search_pages_cover_the_catalogue_once(engine):
    movies = catalogue(engine)
    similar = walk(lambda o, k: [m.movie_id for m in engine.similar("1", k, offset=o)], 7)
    assert len(similar) == len(set(similar)) and set(similar) == movies - {"1"}
    assert similar == [m.movie_id for m in engine.similar("1", len(movies))]
    popular = walk(lambda o, k: [m.movie_id for m in engine.popular(k, offset=o)], 7)
    assert len(popular) == len(set(popular)) and set(popular) == movies
    found = walk(lambda o, k: [m.movie_id for m in engine.search("planted", k, offset=o)], 7)
    assert sorted(found) == sorted(engine.catalogue.index)  # every title says "Planted"


def test_exclude_leaves_the_given_movies_out_and_nothing_else(engine):
    top = [m.movie_id for m in engine.similar("1", 12)]
    without = [m.movie_id for m in engine.similar("1", 10, exclude=top[:2])]
    assert without == top[2:12]
    popular = [m.movie_id for m in engine.popular(12)]
    assert [m.movie_id for m in engine.popular(10, exclude=popular[:2])] == popular[2:12]


def test_http_pages_walk_the_catalogue(client, engine):
    unseen = catalogue(engine) - set(engine.history(USER))

    def recs(offset, k):
        answer = client.get(f"/users/{USER}/recommendations", params={"k": k, "offset": offset})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["offset"] == offset and body["next_offset"] == offset + len(body["items"])
        return [m["movie_id"] for m in body["items"]]

    pages = walk(recs, 10)
    assert len(pages) == len(set(pages)) and set(pages) == unseen

    def similar(offset, k):
        answer = client.get("/movies/1/similar", params={"k": k, "offset": offset})
        return [m["movie_id"] for m in answer.json()["items"]]

    found = walk(similar, 10)
    assert len(found) == len(set(found)) and set(found) == catalogue(engine) - {"1"}

    def popular(offset, k):
        answer = client.get("/popular", params={"k": k, "offset": offset, "user_id": USER})
        return [m["movie_id"] for m in answer.json()["items"]]

    found = walk(popular, 10)
    assert len(found) == len(set(found)) and set(found) == unseen

    def search(offset, k):
        answer = client.get("/movies", params={"query": "planted", "limit": k, "offset": offset})
        return [m["movie_id"] for m in answer.json()["items"]]

    assert sorted(walk(search, 10)) == sorted(engine.catalogue.index)

    def visitor(offset, k):
        body = {"ratings": [{"movie_id": "1", "rating": 5.0}], "k": k, "offset": offset}
        return [m["movie_id"] for m in client.post("/recommendations", json=body).json()["items"]]

    found = walk(visitor, 10)
    assert len(found) == len(set(found)) and set(found) == catalogue(engine) - {"1"}


def test_http_exclude_is_a_repeated_query_parameter(client):
    first = client.get(f"/users/{USER}/recommendations", params={"k": 4}).json()["items"]
    shown = [m["movie_id"] for m in first[:2]]
    answer = client.get(f"/users/{USER}/recommendations", params={"k": 2, "exclude": shown})
    assert [m["movie_id"] for m in answer.json()["items"]] == [m["movie_id"] for m in first[2:]]


def test_watched_never_comes_back_and_counts_as_a_weak_positive(client, engine):
    before = client.get(f"/users/{USER}/recommendations", params={"k": 10}).json()
    top = before["items"][0]["movie_id"]
    stored = client.post(f"/users/{USER}/feedback", json={"movie_id": top, "type": "watched"})
    assert stored.status_code == 201, stored.text
    assert stored.json()["created"] is True and stored.json()["type"] == "watched"
    after = client.get(f"/users/{USER}/recommendations", params={"k": 10}).json()
    assert after["used_feedback"] == 1
    assert top not in [m["movie_id"] for m in after["items"]]
    # even when seen movies are allowed back, and in the popular list for this user
    again = client.get(
        f"/users/{USER}/recommendations", params={"k": 60, "exclude_seen": "false"}
    ).json()
    assert top not in [m["movie_id"] for m in again["items"]]
    popular = client.get("/popular", params={"k": 60, "user_id": USER}).json()["items"]
    assert top not in [m["movie_id"] for m in popular]
    # a weak positive: a profile with only a watched movie is answered as if it had
    # rated it feedback_watched_level of the way up the scale (here 0.625: 3.3 stars)
    client.post("/users/fresh/feedback", json={"movie_id": "5", "type": "watched"})
    fresh = client.get("/users/fresh/recommendations", params={"k": 10}).json()
    stars = level_stars(engine.feedback.feedback_watched_level, engine.rating_scale)
    visitor = {"ratings": [{"movie_id": "5", "rating": stars}], "k": 10}
    same = client.post("/recommendations", json=visitor).json()
    assert fresh["items"] == same["items"] and fresh["used_ratings"] == 0


def test_watched_stands_for_its_level_of_stars_unless_rated(engine):
    def answer(rec: Recommender, **options) -> list[tuple[str, float | None]]:
        return [(m.movie_id, m.blended) for m in rec.recommend(USER, 10, **options).items]

    top = [m.movie_id for m in engine.recommend(USER, 3).items]
    stars = level_stars(engine.feedback.feedback_watched_level, engine.rating_scale)
    assert answer(engine, watched=[top[0]]) == answer(engine, extra_ratings=[(top[0], stars)])
    # a rating of the same movie wins over the stand-in
    rated = [(top[0], 5.0)]
    assert answer(engine, watched=[top[0]], extra_ratings=rated) == answer(
        engine, extra_ratings=rated
    )
    # ... and so does one from training: the query keeps the user's own stars
    trained = engine.history(USER)[0]
    queried: list[list[tuple[str, float]]] = []

    class Spy(Recommender):
        def _query(self, saved, user_id, extra_ratings):
            queried.append(list(extra_ratings))
            return super()._query(saved, user_id, extra_ratings)

    spy = Spy(engine.retrieval, engine.ranking)
    spy.recommend(USER, 10, watched=[trained, top[0]], exclude_seen=False)
    assert queried and all(extra == [(top[0], stars)] for extra in queried)
    # without a level, watched only leaves the movie out
    off = FeedbackSettings(feedback_watched_level=None)
    plain = Recommender(engine.retrieval, engine.ranking, feedback=off)
    assert answer(plain, watched=[top[0]]) == answer(plain, exclude=[top[0]])


def test_not_interested_never_comes_back_pushes_look_alikes_down_and_undoes(client, engine):
    def ranks() -> list[str]:
        answer = client.get(f"/users/{USER}/recommendations", params={"k": 60})
        return [m["movie_id"] for m in answer.json()["items"]]

    before = ranks()
    target = before[0]
    alikes = [m.movie_id for m in engine.similar(target, engine.feedback.feedback_similar)]
    alikes = [m for m in alikes if m in before]
    assert len(alikes) >= 5
    body = {"movie_id": target, "type": "not-interested"}
    assert client.post(f"/users/{USER}/feedback", json=body).status_code == 201
    after = ranks()
    assert target not in after
    moved = [after.index(m) - before.index(m) for m in alikes]
    others = [after.index(m) - before.index(m) for m in after if m not in alikes]
    # the look-alikes fall, the rest rise (into the places they left)
    assert np.mean(moved) > 3 and np.mean(others) < 0
    listed = client.get(f"/users/{USER}/feedback").json()["items"]
    assert [(m["movie_id"], m["type"]) for m in listed] == [(target, "not-interested")]
    removed = client.delete(f"/users/{USER}/feedback/{target}")
    assert removed.status_code == 200 and removed.json()["type"] == "not-interested"
    assert ranks() == before  # deleting the row undoes it
    assert client.get(f"/users/{USER}/feedback").json()["items"] == []
    gone = client.delete(f"/users/{USER}/feedback/{target}")
    assert gone.status_code == 404 and "no feedback" in gone.json()["detail"]


def test_feedback_replaces_the_pairs_earlier_type(client):
    first = client.post(f"/users/{USER}/feedback", json={"movie_id": "3", "type": "watched"})
    second = client.post(
        f"/users/{USER}/feedback", json={"movie_id": "3", "type": "not-interested"}
    )
    assert first.json()["created"] is True and second.json()["created"] is False
    listed = client.get(f"/users/{USER}/feedback").json()["items"]
    assert [(m["movie_id"], m["type"]) for m in listed] == [("3", "not-interested")]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [
        ("post", f"/users/{USER}/feedback", {"json": {"movie_id": "1", "type": "loved"}}, 422,
         "'watched' or 'not-interested'"),
        ("post", f"/users/{USER}/feedback", {"json": {"movie_id": "nope", "type": "watched"}},
         404, "nope"),
        ("post", f"/users/{USER}/feedback", {"json": {"movie_id": "1"}}, 422, "type"),
        ("get", f"/users/{USER}/recommendations", {"params": {"offset": -1}}, 422,
         "greater than or equal to 0"),
        ("get", f"/users/{USER}/recommendations", {"params": {"exclude": ["nope"]}}, 404, "nope"),
        ("get", "/movies/1/similar", {"params": {"offset": -3}}, 422, "greater than or equal"),
        ("get", "/movies/1/similar", {"params": {"exclude": ["nope"]}}, 404, "nope"),
        ("get", "/popular", {"params": {"offset": "x"}}, 422, "integer"),
        ("get", "/popular", {"params": {"exclude": ["nope"]}}, 404, "nope"),
        ("get", "/movies", {"params": {"query": "planted", "offset": -1}}, 422, "greater"),
        ("post", "/recommendations",
         {"json": {"ratings": [{"movie_id": "1", "rating": 4.0}], "offset": -1}}, 422, "greater"),
        ("post", "/recommendations",
         {"json": {"ratings": [{"movie_id": "1", "rating": 4.0}], "not_interested": ["nope"]}},
         404, "nope"),
    ],
)  # fmt: skip
def test_bad_paging_and_feedback_input_is_a_clear_4xx(client, method, path, kwargs, status, words):
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert words in str(answer.json()["detail"])


def test_a_far_offset_is_an_empty_page(client, engine):
    answer = client.get(f"/users/{USER}/recommendations", params={"offset": 100_000})
    assert answer.status_code == 200 and answer.json()["items"] == []
    assert engine.similar("1", 5, offset=10_000) == []


def test_the_engine_refuses_a_negative_offset(engine):
    from movierec.errors import MovierecError

    for call in (
        lambda: engine.recommend(USER, 5, offset=-1),
        lambda: engine.similar("1", 5, offset=-1),
        lambda: engine.popular(5, offset=-1),
        lambda: engine.search("planted", 5, offset=-1),
    ):
        with pytest.raises(MovierecError, match="offset must be"):
            call()
