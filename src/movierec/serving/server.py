"""Running the app on uvicorn with limits that close slow clients.

uvicorn times out idle keep-alive connections but not a client that sends its
request headers a byte at a time (slowloris): :class:`HeaderTimeoutProtocol`
closes a connection whose next request's headers have not all arrived within
``header_timeout`` seconds. Slow bodies are cut by the app
(:class:`~movierec.serving.middleware.BodyLimit`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # the faster parser, when installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - depends on the install
    HttpToolsProtocol = None

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEP_ALIVE_S = 5


class _HeaderTimeout:
    """Mixin for uvicorn's HTTP protocols: a deadline for each request's headers."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None
    _armed_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._armed_cycle = self.cycle  # type: ignore[attr-defined]
        self._header_timer = self.loop.call_later(  # type: ignore[attr-defined]
            self.header_timeout, self._header_deadline
        )

    def _header_deadline(self) -> None:
        """Close unless a new request started since arming or one is still being answered."""
        self._header_timer = None
        cycle = self.cycle  # type: ignore[attr-defined]
        in_flight = cycle is not None and not cycle.response_complete
        if cycle is self._armed_cycle and not in_flight:
            transport = self.transport  # type: ignore[attr-defined]
            if not transport.is_closing():
                transport.close()


def header_timeout_protocol(seconds: float) -> type:
    """uvicorn's fastest available HTTP protocol with a ``seconds`` header deadline."""
    base = HttpToolsProtocol if HttpToolsProtocol is not None else H11Protocol
    return type("HeaderTimeoutProtocol", (_HeaderTimeout, base), {"header_timeout": seconds})


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    *,
    header_timeout: float,
    keep_alive: int = DEFAULT_KEEP_ALIVE_S,
    **options: Any,
):
    """A ``uvicorn.Config`` for the service (no uvicorn access log: the app writes its own).

    Args:
        app: The ASGI application.
        host: Address to listen on.
        port: Port to listen on.
        header_timeout: Seconds a client has to send its request headers before the
            connection is closed (see :func:`header_timeout_protocol`).
        keep_alive: Seconds an idle keep-alive connection stays open.
        **options: Further ``uvicorn.Config`` arguments.

    Returns:
        The ``uvicorn.Config``; the Server header is off and uvicorn leaves logging as
        it is.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_timeout_protocol(header_timeout),
        timeout_keep_alive=keep_alive,
        server_header=False,
        access_log=False,
        log_config=None,  # uvicorn's own would reconfigure logging process-wide
        **options,
    )
