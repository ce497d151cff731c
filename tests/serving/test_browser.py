"""The web page in headless Chromium against a real uvicorn server on loopback.

Uses Debian's ``chromium`` (``/usr/bin/chromium``) through Playwright's Python
client; nothing is downloaded. Without Chromium the test is skipped, except in
CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from movierec.serving.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000


def _require_browser():
    """Playwright's sync API, or skip (fail in CI) with the reason."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    else:
        if CHROMIUM.is_file():
            return sync_playwright
        reason = f"{CHROMIUM} not found (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def open_page(
    width: int = 1100, height: int = 900, origin: str | None = None
) -> Iterator[tuple[Any, list[str]]]:
    """Chromium with one page (timeouts set), closed after.

    The list collects the page's uncaught errors, every console error (a failed
    request, such as a 404, logs one) and, with ``origin``, every request to any
    other origin (refused, as on a machine without network).
    """
    sync_playwright = _require_browser()
    from playwright.sync_api import expect

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: message.type == "error"
                and errors.append(f"console: {message.text} at {message.location.get('url')}"),
            )
            if origin is not None:

                def offline(route):
                    if route.request.url.startswith(origin + "/"):
                        route.continue_()
                    else:
                        errors.append(f"request to another origin: {route.request.url}")
                        route.abort()

                page.route("**/*", offline)
            yield page, errors
        finally:
            browser.close()


@pytest.fixture
def server_url(example_models, tmp_path) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free loopback port."""
    _, recommender = example_models
    app = create_app(db_url=f"sqlite:///{tmp_path / 'ratings.sqlite3'}", recommender=recommender)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_new_profile_rates_three_movies_and_sees_recommendations_change(server_url, tmp_path):
    with open_page() as (page, errors):
        from playwright.sync_api import expect

        page.goto(server_url + "/")
        page.click("#new-profile")
        # Polled from Python: the page's CSP (no eval) refuses wait_for_function strings.
        recs_updates = expect(page.locator("#recs")).to_have_attribute
        recs_updates("data-updates", "1")
        assert "new profile" in page.text_content("#profile-status")
        assert page.locator("#recs li").count() == 0  # nothing rated yet

        page.fill("#search", "planted")
        page.locator("#search-results li").first.wait_for()
        shown: list[list[str]] = []
        rated: list[str] = []
        for round_ in range(1, 4):
            if round_ == 1:  # a movie found by title search ...
                item = page.locator('#search-results li[data-movie-id="1"]')
            else:  # ... then the top recommendation, which must then drop out
                item = page.locator("#recs li").first
            rated.append(item.get_attribute("data-movie-id"))
            item.locator('button[data-stars="5"]').click()
            recs_updates("data-updates", str(round_ + 1))
            recs = page.locator("#recs li")
            assert recs.count() == 10
            shown.append([recs.nth(i).get_attribute("data-movie-id") for i in range(10)])
            assert not set(rated) & set(shown[-1])
            assert "★" in page.text_content("#recs li .predicted")
            assert recs.locator(".because").count() == 10  # a reason line on every card
        assert shown[0] != shown[1] != shown[2]
        assert page.locator("#my-ratings li").count() == 3

        page.locator("#recs li").first.locator("button.similar").click()
        page.locator("#similar li").first.wait_for()
        assert page.locator("#similar li").count() == 8
        assert "similarity: cosine of the two movies' embeddings (-1 to 1" in page.text_content(
            "#similar-note"
        )  # what "similarity 0.47" means
        assert errors == []
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "phone.png"))
        keep = os.environ.get("MOVIEREC_SCREENSHOTS")
        if keep:
            for name in ("page.png", "phone.png"):
                shutil.copy(tmp_path / name, Path(keep) / name)


def test_not_interested_watched_and_more_on_the_cards(server_url):
    with open_page() as (page, errors):
        from playwright.sync_api import expect

        page.goto(server_url + "/")
        page.click("#new-profile")
        recs_updates = expect(page.locator("#recs")).to_have_attribute
        recs_updates("data-updates", "1")
        assert page.locator("#recs-more").is_hidden()  # nothing to page yet
        page.locator('#popular li button[data-stars="5"]').first.click()
        recs_updates("data-updates", "2")

        def recs() -> list[str]:
            items = page.locator("#recs li")
            return [items.nth(i).get_attribute("data-movie-id") for i in range(items.count())]

        first = recs()
        assert len(first) == 10
        # every card has both buttons
        for list_id in ("#recs", "#popular"):
            cards = page.locator(f"{list_id} li")
            assert cards.count() > 0
            for i in range(cards.count()):
                for kind in ("watched", "not-interested"):
                    assert cards.nth(i).locator(f'button[data-feedback="{kind}"]').count() == 1

        def press(movie: str, kind: str) -> None:
            card = page.locator(f'#recs li[data-movie-id="{movie}"]')
            card.locator(f'button[data-feedback="{kind}"]').click()

        disliked = first[0]
        press(disliked, "not-interested")
        recs_updates("data-updates", "3")
        after = recs()
        assert disliked not in after and len(after) == 10
        seen = after[0]
        press(seen, "watched")
        recs_updates("data-updates", "4")
        assert seen not in recs() and disliked not in recs()
        listed = page.locator("#my-feedback li")
        assert [listed.nth(i).get_attribute("data-movie-id") for i in range(2)] == [seen, disliked]
        assert "not interested" in page.text_content(f'#my-feedback li[data-movie-id="{disliked}"]')
        cards = page.locator("#popular li")
        popular = {cards.nth(i).get_attribute("data-movie-id") for i in range(cards.count())}
        assert popular and not {seen, disliked} & popular

        # "More": the next ten, none twice, none of the movies given feedback
        page.click("#recs-more")
        recs_updates("data-updates", "5")
        twenty = recs()
        assert len(twenty) == 20 and len(set(twenty)) == 20
        assert not {seen, disliked} & set(twenty)
        page.click("#recs-more")
        recs_updates("data-updates", "6")
        assert len(recs()) == 30 and len(set(recs())) == 30

        # undo: the not-interested movie may be recommended again (it was the top one)
        page.locator(f'#my-feedback li[data-movie-id="{disliked}"] button.undo').click()
        recs_updates("data-updates", "7")
        assert page.locator("#my-feedback li").count() == 1
        assert disliked in recs() and len(recs()) == 10
        assert errors == []
