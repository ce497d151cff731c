"""API keys, rate limits, allowed hosts, security headers and timeouts of the service."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from movierec.cli.main import main
from movierec.errors import MovierecError
from movierec.serving.app import create_app
from movierec.serving.security import KeyChecker, RateLimiter, parse_rate, read_api_keys
from movierec.serving.server import uvicorn_config
from movierec.testing import free_port

KEY = "k" * 20 + "-first"
OTHER = "z" * 24


@pytest.fixture
def make_client(example_models):
    """A TestClient factory over the shared example models: ``make_client(tmp_path, **options)``."""
    _, recommender = example_models

    def make(tmp_path, **options) -> TestClient:
        url = f"sqlite:///{tmp_path / 'ratings.sqlite3'}"
        return TestClient(create_app(db_url=url, recommender=recommender, **options))

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_api_needs_a_key_and_probes_and_page_do_not(make_client, tmp_path):
    with make_client(tmp_path, api_keys=[KEY, OTHER]) as client:
        for headers in (
            {},
            bearer("wrong-key-of-some-length"),
            {"Authorization": KEY},
            {"Authorization": f"Basic {KEY}"},
        ):
            response = client.get("/users/2/recommendations", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "API key" in response.json()["detail"]
        assert client.get("/users/2/recommendations", headers=bearer(KEY)).status_code == 200
        assert client.get("/version", headers=bearer(OTHER)).status_code == 200
        for path in ("/health/live", "/health/ready", "/", "/static/app.js", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        # the key is checked before the body is read: no 422 hints without one
        response = client.post(
            "/users/2/ratings", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401
        ok = client.post(
            "/users/2/ratings", json={"movie_id": "1", "rating": 4}, headers=bearer(KEY)
        )
        assert ok.status_code == 201
        assert client.get("/users/2/ratings").status_code == 401
        schema = client.get("/openapi.json").json()
        operation = schema["paths"]["/users/{user_id}/ratings"]["post"]
        assert operation["security"] == [{"bearer": []}] and "401" in operation["responses"]
        assert "security" not in schema["paths"]["/health/ready"]["get"]


def test_without_keys_everything_is_open(make_client, tmp_path):
    with make_client(tmp_path) as client:
        assert client.get("/users/2/recommendations").status_code == 200


def test_key_checker_accepts_every_key_and_nothing_else():
    checker = KeyChecker([KEY, OTHER])
    assert checker.matches(KEY) and checker.matches(OTHER)
    assert not checker.matches(KEY[:-1]) and not checker.matches(KEY + "x")
    assert not checker.matches("") and not checker.matches("é" * 20)


def test_reading_api_keys(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# service keys\n{KEY}\n\n  {OTHER}  \n")
    assert read_api_keys(path, environ={}) == [KEY, OTHER]
    assert read_api_keys(None, environ={"MOVIEREC_API_KEY": OTHER}) == [OTHER]
    assert read_api_keys(None, environ={}) == []
    path.write_text("short\n")
    with pytest.raises(MovierecError, match="line 1: an API key must be at least 16"):
        read_api_keys(path, environ={})
    path.write_text("# nothing\n")
    with pytest.raises(MovierecError, match="holds no API key"):
        read_api_keys(path, environ={})
    with pytest.raises(MovierecError, match="cannot read API keys"):
        read_api_keys(tmp_path / "missing", environ={})


def test_serve_refuses_a_public_host_without_keys(example_models, tmp_path, capsys, monkeypatch):
    models, _ = example_models
    monkeypatch.delenv("MOVIEREC_API_KEY", raising=False)
    public = ["serve", "--models", str(models), "--host", "0.0.0.0", "--port", str(free_port()),
              "--db", f"sqlite:///{tmp_path / 'r.sqlite3'}"]  # fmt: skip
    assert main(public) == 2
    assert "refusing to serve 0.0.0.0 without API keys" in capsys.readouterr().err
    started = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: started.append(self.config)
    )
    for extra in (["--no-auth"], ["--api-key-file", str(tmp_path / "keys")]):
        (tmp_path / "keys").write_text(KEY + "\n")
        assert main([*public, *extra]) == 0
    assert [config.host for config in started] == ["0.0.0.0", "0.0.0.0"]
    assert main(["serve", "--models", str(models), "--rate-limit", "fast"]) == 2
    assert "--rate-limit expects" in capsys.readouterr().err


def test_rate_limit_answers_429_with_retry_after(make_client, tmp_path):
    with make_client(tmp_path, rate_limit=1.0, rate_burst=3, api_keys=[KEY, OTHER]) as client:
        codes = [client.get("/movies/1", headers=bearer(KEY)).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        limited = client.get("/movies/1", headers=bearer(KEY))
        assert limited.headers["Retry-After"] == "1" and "rate limit" in limited.json()["detail"]
        # another key is another client; probes are never limited
        assert client.get("/movies/1", headers=bearer(OTHER)).status_code == 200
        assert all(client.get("/health/ready").status_code == 200 for _ in range(10))


def test_rate_limiter_refills_at_its_rate():
    limiter = RateLimiter(rate=2.0, burst=2)
    assert [limiter.take("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("a", now=0.5) == 0.0
    assert limiter.take("b", now=0.5) == 0.0
    small = RateLimiter(rate=1.0, burst=1, max_clients=2)
    for client in "abc":
        small.take(client, now=10.0)
    assert len(small._buckets) <= 2
    assert parse_rate("600/min") == 10.0 and parse_rate("off") is None
    with pytest.raises(MovierecError):
        parse_rate("-1/s")


def test_allowed_hosts_refuse_other_names(make_client, tmp_path):
    with make_client(tmp_path, allowed_hosts=["127.0.0.1", "localhost"]) as client:
        assert client.get("/health/live", headers={"Host": "localhost:8000"}).status_code == 200
        refused = client.get("/health/live", headers={"Host": "evil.example"})
        assert refused.status_code == 400 and "not allowed" in refused.json()["detail"]


def test_security_headers_on_every_answer(make_client, tmp_path):
    with make_client(tmp_path, api_keys=[KEY]) as client:
        for path, status in (
            ("/", 200),
            ("/health/ready", 200),
            ("/movies/1", 401),
            ("/nowhere", 401),
            ("/static/nowhere.js", 404),
            ("/static/app.js", 200),
        ):
            response = client.get(path)
            assert response.status_code == status
            headers = response.headers
            assert "default-src 'self'" in headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Referrer-Policy"] == "no-referrer"
        assert client.get("/movies/1", headers=bearer(KEY)).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_cross_site_form_posts_are_refused(make_client, tmp_path, content_type):
    with make_client(tmp_path) as client:
        response = client.post(
            "/users/2/ratings",
            content=b'{"movie_id": "1", "rating": 4}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 422
        assert client.get("/users/2/ratings").json()["ratings"] == []


@pytest.fixture
def live_server(example_models, tmp_path):
    """The app on a real uvicorn with 0.5 s header and body timeouts."""
    _, recommender = example_models
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", recommender=recommender, body_timeout=0.5
    )
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, header_timeout=0.5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def read_all(sock: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took."""
    sock.settimeout(limit)
    started, data = time.monotonic(), b""
    while chunk := sock.recv(4096):
        data += chunk
    return data, time.monotonic() - started


def test_slow_headers_are_cut_off(live_server):
    with socket.create_connection(("127.0.0.1", live_server)) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        data, waited = read_all(sock)
    assert data == b"" and waited < 2.0
    # a request that completes in time is answered, then kept alive until idle
    with socket.create_connection(("127.0.0.1", live_server)) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.7)  # past the header deadline while nothing is pending: closed
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 200")


def test_slow_bodies_get_408(live_server):
    with socket.create_connection(("127.0.0.1", live_server)) as sock:
        sock.sendall(
            b"POST /users/2/ratings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"movie'
        )
        sock.settimeout(5)
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in data
