"""The reason line on each recommended card ("Because you rated ..."), in Chromium, on a
history-aware model pair (the session's small two-tower and dcn on planted data).

Same set-up as ``test_browser.py`` (Debian's chromium through Playwright's client;
skipped without it outside CI).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from test_browser import TIMEOUT_MS, open_page

from movierec.serving.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def explained_url(tmp_path, planted_two_stage) -> Iterator[str]:
    """A real uvicorn server over the planted two-stage models, on a free loopback port."""
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=planted_two_stage.engine
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _updates(page, n: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#recs")).to_have_attribute("data-updates", str(n), timeout=TIMEOUT_MS)


def test_every_recommended_card_says_which_of_your_ratings_it_comes_from(
    explained_url, planted_two_stage
):
    with open_page() as (page, errors):
        page.goto(explained_url + "/")
        page.click("#new-profile")
        _updates(page, 1)
        page.fill("#search", "planted 1")
        rated = {"1": "Planted 1 (1991)", "12": "Planted 12 (1992)"}
        for n, movie in enumerate(rated, start=2):
            item = page.locator(f'#search-results li[data-movie-id="{movie}"]')
            item.locator('button[data-stars="5"]').click()
            _updates(page, n)
        cards = page.locator("#recs li")
        assert cards.count() == 10
        for i in range(10):
            line = cards.nth(i).locator(".because")
            text = line.text_content()
            assert text.startswith("Because you rated "), text
            named = [title for title in rated.values() if title in text]
            assert named and text.count("5 ★") == len(named)
            assert line.get_attribute("title") == text  # the whole line on hover

        # A known user: the reasons are among their training ratings, with their stars.
        history = {
            r.title: r.predicted_rating for r in planted_two_stage.engine.training_ratings("2")
        }
        page.fill("#user-id", "2")
        page.click("#profile-form button[type=submit]")
        _updates(page, len(rated) + 2)
        for i in range(cards.count()):
            titles = cards.nth(i).locator(".because b").all_text_contents()
            assert 1 <= len(titles) <= 3
            text = cards.nth(i).locator(".because").text_content()
            for title in titles:
                assert f"{title} {history[title]:g} ★" in text
        assert errors == []
