"""The page's start view, known users, controls, unknown ids and user switches, in Chromium.

Same set-up as ``test_browser.py`` (Debian's chromium through Playwright's client;
skipped without it outside CI).
"""

from __future__ import annotations

import pytest
from test_browser import TIMEOUT_MS, open_page, server_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def _updates(page, n: int) -> None:
    """Wait for the n-th recommendations refresh (no page-side eval: the page's CSP
    forbids it)."""
    from playwright.sync_api import expect

    expect(page.locator("#recs")).to_have_attribute("data-updates", str(n), timeout=TIMEOUT_MS)


def test_page_start_view_known_user_controls_unknown_id_and_switch(server_url):  # noqa: F811
    with open_page() as (page, errors):
        page.goto(server_url + "/")

        # Favicon: declared, and served.
        icon = page.get_attribute('link[rel="icon"]', "href")
        assert page.request.get(server_url + icon).status == 200

        # Start view: popular movies to rate before any search or profile.
        page.locator("#popular li").first.wait_for()
        assert page.locator("#popular li").count() == 12
        first = page.locator("#popular li").first
        assert first.locator(".rate-label").text_content() == "Rate it"
        first.locator('button[data-stars="4"]').click()  # starts a profile by itself
        _updates(page, 2)  # the empty new profile, then after the rating
        assert "new profile" in page.text_content("#profile-status")
        assert page.locator("#recs li").count() == 10
        assert page.locator("#my-ratings li").count() == 1

        # Predicted stars and your rating look and behave differently.
        predicted = page.locator("#recs li .predicted").first
        assert predicted.text_content().startswith("Predicted for you:")
        assert predicted.evaluate("n => n.tagName") == "SPAN"  # read-only, not a control
        assert predicted.locator("button").count() == 0
        assert page.locator("#recs li").first.locator(".stars button").count() == 5
        rated = page.locator("#my-ratings li").first
        assert rated.locator(".rate-label").text_content() == "Your rating"
        assert rated.locator(".star.on").count() == 4

        # An unknown id is a question, not a silent new profile.
        page.fill("#user-id", "nobody-here")
        page.click("#profile-form button[type=submit]")
        page.locator("#unknown-user").wait_for(state="visible")
        assert "nobody-here" in page.text_content("#unknown-text")
        page.click("#unknown-retype")
        assert page.locator("#unknown-user").is_hidden()
        assert page.evaluate("document.activeElement.id") == "user-id"

        # A known user: their training ratings are listed with their stars.
        page.locator("#recs li").first.locator("button.similar").click()
        page.locator("#similar li").first.wait_for()
        page.fill("#user-id", "2")
        page.click("#profile-form button[type=submit]")
        _updates(page, 3)
        page.locator("#training-ratings li").first.wait_for()
        assert "in training" in page.text_content("#training-title")
        training = page.locator("#training-ratings li")
        assert training.count() == 5  # the best five, the rest behind "Show all"
        assert training.first.locator(".star.on").count() >= 1
        assert "known to the model" in page.text_content("#profile-status")
        # ... and nothing of the previous profile stays on screen.
        assert page.locator("#similar-box").is_hidden()
        assert page.locator("#my-ratings li").count() == 0

        # The unknown id, confirmed this time, becomes a new profile.
        page.fill("#user-id", "nobody-here")
        page.click("#profile-form button[type=submit]")
        page.locator("#unknown-user").wait_for(state="visible")
        page.click("#unknown-new")
        _updates(page, 4)
        assert "User nobody-here: a new profile" in page.text_content("#profile-status")
        assert page.locator("#training-box").is_hidden()
        assert errors == []


def test_the_page_says_when_and_on_how_many_ratings_the_model_was_trained(server_url):  # noqa: F811
    import re

    import httpx
    from playwright.sync_api import expect

    version = httpx.get(server_url + "/version").json()
    with open_page() as (page, errors):
        page.goto(server_url + "/")
        age = page.locator("#model-age")
        expect(age).to_contain_text("Model trained", timeout=TIMEOUT_MS)
        day, clock = version["trained_at"][:10], version["trained_at"][11:16]
        count = f"{version['trained_on_ratings']:,}"
        assert age.text_content() == f"Model trained {day} {clock} UTC on {count} ratings."
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", day)
        assert errors == []
