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
from conftest import cli_example_models as example_models

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
def server_url(tmp_path) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free loopback port."""
    _, recommender = example_models()
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
