"""The page's layout in Chromium: rating moves nothing under the pointer, rated movies
leave the popular list, recommendations are in view on a laptop and first on a phone,
a known user's training ratings are collapsed, and no console error on the way.

Same set-up as ``test_browser.py`` (Debian's chromium through Playwright's client;
skipped without it outside CI).
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_browser import TIMEOUT_MS, open_page, server_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

LAPTOP = (1366, 768)
PHONE = (390, 844)


def _updates(page, n: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#recs")).to_have_attribute("data-updates", str(n), timeout=TIMEOUT_MS)


def _ids(page, selector: str) -> list[str]:
    items = page.locator(selector)
    return [items.nth(i).get_attribute("data-movie-id") for i in range(items.count())]


def _boxes(page, selector: str) -> list[dict]:
    items = page.locator(selector)
    return [items.nth(i).bounding_box() for i in range(items.count())]


def _card_at(page, x: float, y: float) -> dict:
    """The movie card under the point (viewport coordinates): its list, id and box."""
    return page.evaluate(
        """([x, y]) => {
            const li = document.elementFromPoint(x, y).closest("li.movie");
            const box = li.getBoundingClientRect();
            return {list: li.parentElement.id, id: li.dataset.movieId,
                    box: {x: box.x, y: box.y, width: box.width, height: box.height}};
        }""",
        [x, y],
    )


def _rate_popular(page, index: int, stars: int, update: int) -> tuple[str, dict, dict]:
    """Rate the index-th popular card with the pointer on its star; the rated id, the
    card under the pointer before and after."""
    card = page.locator("#popular li").nth(index)
    movie = card.get_attribute("data-movie-id")
    star = card.locator(f'button[data-stars="{stars}"]')
    star.scroll_into_view_if_needed()
    box = star.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    before = _card_at(page, x, y)
    assert before["id"] == movie and before["list"] == "popular"
    page.mouse.click(x, y)
    _updates(page, update)
    page.locator(f'#my-ratings li[data-movie-id="{movie}"]').wait_for()
    return movie, before, _card_at(page, x, y)


def _assert_same_box(after: dict, before: dict) -> None:
    for side in ("x", "y", "width", "height"):
        assert abs(after[side] - before[side]) < 1, (side, before, after)


def test_rating_on_a_laptop_moves_nothing_and_keeps_recommendations_in_view(server_url):  # noqa: F811
    with open_page(*LAPTOP) as (page, errors):
        page.goto(server_url + "/")
        page.locator("#popular li").nth(11).wait_for()
        recs = page.locator("#recs-section")
        assert 0 <= recs.bounding_box()["y"] < LAPTOP[1] / 2
        boxes = _boxes(page, "#popular li")
        popular = _ids(page, "#popular li")

        # the first rating starts a profile; the card's place goes to the next movie
        movie, before, after = _rate_popular(page, 2, 4, update=2)
        assert page.evaluate("window.scrollY") == 0
        assert after["list"] == "popular" and after["id"] != movie
        _assert_same_box(after["box"], before["box"])
        for old, new in zip(boxes, _boxes(page, "#popular li"), strict=True):
            _assert_same_box(new, old)  # every card where it was
        now = _ids(page, "#popular li")
        assert movie not in now and len(now) == 12
        assert [m for m in now if m != after["id"]] == [m for m in popular if m != movie]
        assert page.locator("#recs li").count() == 10

        # again further down, the page scrolled: nothing moves, the movie leaves
        movie, before, after = _rate_popular(page, 10, 5, update=3)
        _assert_same_box(after["box"], before["box"])
        assert movie not in _ids(page, "#popular li") and after["id"] != movie
        assert not {movie, *_ids(page, "#my-ratings li")} & set(_ids(page, "#popular li"))
        assert not set(_ids(page, "#my-ratings li")) & set(_ids(page, "#recs li"))

        # the recommendations stay in view however far down one scrolls
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        top = recs.bounding_box()["y"]
        assert -1 < top < LAPTOP[1] / 2, top  # (sub-pixel rounding)
        assert page.locator("#recs li").first.is_visible()
        assert errors == []


def test_on_a_phone_recommendations_come_first_and_rating_moves_nothing(server_url):  # noqa: F811
    with open_page(*PHONE) as (page, errors):
        page.goto(server_url + "/")
        page.locator("#popular li").nth(11).wait_for()
        order = page.evaluate(
            """() => document.querySelector("#recs-section").compareDocumentPosition(
                document.querySelector("#popular-box")) & Node.DOCUMENT_POSITION_FOLLOWING"""
        )
        assert order
        assert page.locator("#recs-section").bounding_box()["y"] < page.locator(
            "#popular-box"
        ).bounding_box()["y"]

        # the first rating fills the (empty) recommendations above the popular list:
        # the page scrolls with it, so the card under the finger stays put
        movie, before, after = _rate_popular(page, 4, 4, update=2)
        _assert_same_box(after["box"], before["box"])
        assert after["list"] == "popular" and movie not in _ids(page, "#popular li")
        assert page.locator("#recs li").count() == 10
        movie, before, after = _rate_popular(page, 5, 2, update=3)
        _assert_same_box(after["box"], before["box"])
        assert movie not in _ids(page, "#popular li")

        page.evaluate("window.scrollTo(0, 0)")
        recs = page.locator("#recs-section").bounding_box()
        assert 0 <= recs["y"] < PHONE[1] / 2
        assert recs["y"] < page.locator("#popular-box").bounding_box()["y"]
        assert page.locator("#recs li").first.bounding_box()["y"] < PHONE[1]
        assert errors == []


def test_a_known_users_training_ratings_are_collapsed_until_show_all(example_models, server_url):  # noqa: F811
    models, _ = example_models
    train = pd.read_parquet(models / "retrieval" / "train.parquet")
    watched = set(train.loc[train["user_id"] == "2", "movie_id"])
    assert len(watched) > 5
    with open_page(*LAPTOP) as (page, errors):
        page.goto(server_url + "/")
        page.fill("#user-id", "2")
        page.click("#profile-form button[type=submit]")
        _updates(page, 1)
        training = page.locator("#training-ratings li")
        assert training.count() == 5
        more = page.locator("#training-more")
        assert more.text_content() == f"Show all {len(watched)}"
        assert more.get_attribute("aria-expanded") == "false"
        # the recommendations are in view, not below a long list
        assert 0 <= page.locator("#recs-section").bounding_box()["y"] < LAPTOP[1] / 2
        assert page.locator("#recs li").first.bounding_box()["y"] < LAPTOP[1]
        # what the user rated is in neither the popular list nor the recommendations
        assert not set(_ids(page, "#popular li")) & watched
        assert len(_ids(page, "#popular li")) == min(12, 60 - len(watched))
        assert not set(_ids(page, "#recs li")) & watched

        more.click()
        assert training.count() == len(watched)
        assert set(_ids(page, "#training-ratings li")) == watched
        assert more.text_content() == "Show fewer"
        assert more.get_attribute("aria-expanded") == "true"
        more.click()
        assert training.count() == 5
        assert errors == []
