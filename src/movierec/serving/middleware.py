"""ASGI middleware of the HTTP service: checks that run before FastAPI reads a request.

Each wraps the app and answers a bad request itself, with the JSON ``{"detail": ...}``
every other error carries: a missing or wrong API key (401), a body too large (413)
or too slow (408), a path or query that is not UTF-8 (422).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from movierec.serving.security import KeyChecker, bearer_token, is_public

#: Largest request body accepted by default (a rating is a few dozen bytes).
MAX_BODY_BYTES = 64 * 1024
#: Seconds a request body may take to arrive after its headers, by default.
DEFAULT_BODY_TIMEOUT_S = 10.0


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by header and by count,
    and bodies still incomplete ``timeout`` seconds after the headers with 408.

    Content-Length is checked up front; the bytes actually received are counted
    too (chunked bodies have no length, and a header may lie).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        timeout: float = DEFAULT_BODY_TIMEOUT_S,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_error(scope, send, 400, "Content-Length is not a number")
                return
            if length > self.max_bytes:
                await _send_error(scope, send, 413, self._message())
                return
        received = 0
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counted() -> Message:
            nonlocal received
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise HTTPException(
                    408, f"request body not received within {self.timeout:g} s"
                ) from None
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises HTTPException from body reading; its handler answers.
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes"


class StrictUtf8:
    """Refuse (422) a path or query string whose percent-escapes are not UTF-8.

    The server decodes them with replacement characters, so two different invalid
    ids (``%FF`` and ``%FE``) would otherwise name the same user.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode()
            for where, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
                try:
                    text = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
                    if where == "path" and "\x00" in text:  # ids: no database stores NUL
                        raise UnicodeDecodeError("utf-8", b"\x00", 0, 1, "NUL")
                except UnicodeDecodeError:
                    detail = [
                        {
                            "type": "value_error",
                            "loc": [where],
                            "msg": f"the {where} is not valid UTF-8 text (or holds a NUL)",
                        }
                    ]
                    await _send_error(scope, send, 422, detail)
                    return
        await self.app(scope, receive, send)


class RequireKey:
    """401 for any non-public path without a valid ``Authorization: Bearer`` key,
    before the request body is read or parsed."""

    def __init__(self, app: ASGIApp, checker: KeyChecker):
        self.app = app
        self.checker = checker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_public(scope["path"]):
            token = bearer_token(scope["headers"])
            if token is None or not self.checker.matches(token):
                detail = "a valid API key is required: send `Authorization: Bearer KEY`"
                await _send_error(scope, send, 401, detail, {"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


async def _send_error(
    scope: Scope, send: Send, status: int, detail: Any, headers: dict[str, str] | None = None
) -> None:
    """Answer the request with ``{"detail": detail}``, without reading its body."""
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
