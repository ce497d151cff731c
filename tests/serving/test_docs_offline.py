"""/docs needs no network: every file it loads comes from the app itself."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from movierec.serving.app import create_app

KEY = "k" * 24


class Links(HTMLParser):
    """Every URL an HTML page loads or links to: src and href attributes."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append((tag, value))


def page_urls(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def client(example_models, tmp_path_factory):
    """An app with API keys: the docs and their files must still be public."""
    _, recommender = example_models
    db = tmp_path_factory.mktemp("docs") / "ratings.sqlite3"
    app = create_app(db_url=f"sqlite:///{db}", recommender=recommender, api_keys=[KEY])
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("page", "expected"),
    [("/docs", {"script", "link"}), ("/", {"script", "link"})],
)
def test_every_file_a_page_loads_is_served_by_the_app(client, page, expected):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn." not in html and "fastapi.tiangolo.com" not in html
    urls = page_urls(html)
    assert {tag for tag, _ in urls} >= expected, urls
    for tag, url in urls:
        if tag == "a":  # links a person follows, not files the page needs
            continue
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url}"
        asset = client.get(url)  # no key: public like the page
        assert asset.status_code == 200, url
        assert asset.content, url
    csp = response.headers["content-security-policy"]
    assert "http" not in csp and "cdn" not in csp, csp


def test_the_docs_load_swagger_ui_from_the_package(client):
    urls = [url for _, url in page_urls(client.get("/docs").text)]
    [script] = [url for url in urls if url.endswith(".js")]
    bundle = client.get(script)
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text
    [stylesheet] = [url for url in urls if url.endswith(".css")]
    assert ".swagger-ui" in client.get(stylesheet).text
    # no ReDoc page: it would fetch its logo from a CDN
    assert "/redoc" not in {getattr(route, "path", None) for route in client.app.routes}
    # the page they describe is reachable without a key, the API is not
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/popular").status_code == 401
    assert client.get("/docs/assets/no-such-file.js").status_code == 404
