"""/docs (Swagger UI) renders in Chromium with every other origin refused: the API
description works on a machine without network.

Same set-up as ``test_browser.py`` (Debian's chromium through Playwright's client;
skipped without it outside CI).
"""

from __future__ import annotations

import pytest
from test_browser import open_page, server_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_offline(server_url):  # noqa: F811
    with open_page(origin=server_url) as (page, errors):
        page.goto(server_url + "/docs")
        page.locator(".opblock").first.wait_for()
        paths = page.locator(".opblock-summary-path").all_text_contents()
        assert "/users/{user_id}/recommendations" in [p.replace("\u200b", "") for p in paths]
        assert page.locator(".swagger-ui .info .title").text_content().startswith("movierec")
        # a style sheet applied: Swagger UI's own, from the app
        assert page.locator(".opblock").first.evaluate(
            "n => getComputedStyle(n).borderRadius"
        ) not in ("", "0px")
        assert errors == []

