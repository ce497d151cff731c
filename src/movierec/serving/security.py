"""What stands between the internet and the models: API keys, per-client rate
limits, allowed Host names and security headers.

All of it is plain ASGI middleware or FastAPI dependencies configured per app;
nothing here changes process-wide state.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from movierec.errors import MovierecError

API_KEY_ENV = "MOVIEREC_API_KEY"
MIN_KEY_LENGTH = 16
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: The API's documentation page (Swagger UI) and the files it loads, all served by
#: the app itself (no CDN).
DOCS_URL = "/docs"
DOCS_ASSETS_URL = "/docs/assets"
# Paths anyone may reach: probes, the page and its files, and the API description.
PUBLIC_PATHS = (
    "/health",
    "/health/live",
    "/health/ready",
    "/",
    DOCS_URL,
    "/openapi.json",
    "/docs/oauth2-redirect",
)
PUBLIC_PREFIXES = ("/static/", DOCS_ASSETS_URL + "/")
# Probes are never rate limited: an orchestrator polling them must not lock itself out.
UNLIMITED_PATHS = ("/health", "/health/live", "/health/ready")


class AuthError(MovierecError):
    """Missing or wrong API key (answered 401)."""


def is_public(path: str) -> bool:
    """Whether anyone may reach ``path`` without an API key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_api_keys(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Keys from ``path`` (one a line, ``#`` comments and blank lines skipped) and
    from ``$MOVIEREC_API_KEY``; each at least 16 characters."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    keys: list[str] = []
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise MovierecError(f"cannot read API keys from {path}: {error}") from None
        for number, line in enumerate(lines, 1):
            key = line.strip()
            if key and not key.startswith("#"):
                _check_key(key, f"{path}, line {number}")
                keys.append(key)
        if not keys:
            raise MovierecError(f"{path} holds no API key (one key a line)")
    if env.get(API_KEY_ENV):
        key = env[API_KEY_ENV].strip()
        _check_key(key, f"${API_KEY_ENV}")
        keys.append(key)
    return keys


def _check_key(key: str, where: str) -> None:
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key) or not key.isprintable():
        raise MovierecError(
            f"{where}: an API key must be at least {MIN_KEY_LENGTH} printable characters "
            "without spaces (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


class KeyChecker:
    """Compares a presented key with every configured key in constant time."""

    def __init__(self, keys: Iterable[str]):
        self._keys = [key.encode() for key in keys]

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (without one, every request is let in)."""
        return bool(self._keys)

    def matches(self, presented: str) -> bool:
        """Whether ``presented`` is one of the keys, compared with every one in turn."""
        given = presented.encode("utf-8", "surrogateescape")
        found = False
        for key in self._keys:  # no early exit: the time does not say which key was close
            found |= hmac.compare_digest(given, key)
        return found


def bearer_token(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The token of the first ``Authorization: Bearer`` header among raw ASGI headers,
    or ``None`` when the first Authorization header is missing or of another scheme."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def require_api_key(request: Request) -> None:
    """Dependency of every API route: 401 without a valid ``Authorization: Bearer``."""
    checker: KeyChecker | None = request.app.state.keys
    if checker is None or not checker.enabled:
        return
    token = bearer_token(request.scope["headers"])
    if token is None or not checker.matches(token):
        raise AuthError("a valid API key is required: send `Authorization: Bearer KEY`")


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token buckets per client: ``rate`` requests a second, bursts up to ``burst``."""

    rate: float
    burst: float
    max_clients: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._forget_idle(now)
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled (they lose nothing by being forgotten)."""
        full = [
            c
            for c, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:  # all busy: forget the oldest half
            oldest = sorted(self._buckets, key=lambda c: self._buckets[c].updated)
            for client in oldest[: len(oldest) // 2]:
                del self._buckets[client]


def parse_rate(text: str) -> float | None:
    """``"50/s"``, ``"600/min"`` or ``"off"`` -> requests a second (None for off)."""
    if text.strip().lower() in ("off", "0", "none"):
        return None
    count, _, unit = text.strip().partition("/")
    seconds = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
    try:
        rate = float(count) / seconds[unit.strip().lower() or "s"]
    except (ValueError, KeyError):
        raise MovierecError(f"--rate-limit expects N/s, N/min or off, got {text!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise MovierecError(f"--rate-limit must be positive, got {text!r}")
    return rate


class RateLimit:
    """429 with ``Retry-After`` once a client exceeds its rate.

    A client is its API key when it sends one (an application in front serves many
    people from one address), else its address.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope["headers"])
        client = scope.get("client")
        who = (
            f"key:{hmac.new(b'rate', token.encode(), 'sha256').hexdigest()[:16]}"
            if token
            else f"addr:{client[0] if client else '?'}"
        )
        wait = self.limiter.take(who)
        if wait > 0:
            response = JSONResponse(
                {"detail": f"rate limit of {self.limiter.rate:g} requests a second exceeded"},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class AllowedHosts:
    """400 for a Host header outside ``hosts`` (DNS rebinding: a page on evil.example
    resolving to 127.0.0.1 would otherwise reach a loopback service)."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]):
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.any = "*" in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                response = JSONResponse(
                    {"detail": f"host {host!r} is not allowed"}, status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI: files from this app, an inline bootstrap script, inline styles; nothing
# from another origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """CSP, nosniff, no framing, no referrer on every response; API answers uncached."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = DOCS_CSP if path.startswith(DOCS_URL) else PAGE_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if not is_public(path):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
