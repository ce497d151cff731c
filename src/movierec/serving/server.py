"""Running the app on uvicorn with limits that close slow clients.

uvicorn times out idle keep-alive connections but not a client that sends its
request headers a byte at a time (slowloris): :class:`HeaderTimeoutProtocol`
closes a connection whose next request's headers have not all arrived within
``header_timeout`` seconds. Slow bodies are cut by the app
(:class:`~movierec.serving.middleware.BodyLimit`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from movierec.errors import MovierecError

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEP_ALIVE_S = 5
#: The TCP ports a service can listen on (0, "any free port", would make the
#: announced address wrong).
PORTS = range(1, 65536)


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) TCP sockets for every address ``host`` names, as
    asyncio's ``create_server`` would bind them; hand them to ``uvicorn.Server.run``.

    Binding before the models load turns a port in use or out of range into an
    error at once. Until uvicorn listens on them, connections are refused as if
    nothing were bound (and only another ``SO_REUSEADDR`` socket could bind the
    port meanwhile; the first to listen then wins).

    Args:
        host: Address or name to listen on.
        port: TCP port, 1 to 65535.

    Returns:
        One socket per distinct address; the caller closes them.

    Raises:
        MovierecError: The port is out of range, the host does not resolve, or an
            address cannot be bound (in use, not this machine's, not permitted).
    """
    if port not in PORTS:
        raise MovierecError(f"--port must be 1 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise MovierecError(f"cannot listen on {host}: {error.strerror}") from None
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
                where = f"{shown}:{port}"
                if error.errno == errno.EADDRINUSE:
                    reason = "the port is already in use (another server? pick --port)"
                elif error.errno == errno.EADDRNOTAVAIL:
                    reason = "that is not an address of this machine"
                elif error.errno == errno.EACCES:
                    reason = "permission denied (ports below 1024 need privileges)"
                else:
                    reason = error.strerror or str(error)
                raise MovierecError(f"cannot listen on {where}: {reason}") from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _HeaderTimeout:
    """Mixin for uvicorn's HTTP protocols: a deadline for each request's headers."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None
    _armed_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:
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
    base: type = H11Protocol
    try:  # the faster parser, when installed
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - depends on the install
        pass
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
