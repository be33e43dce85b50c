"""The HTTP client deliveries go out on: it connects to the address the dispatcher
checked, never to whatever a second lookup of the host name would give.

Checking a name and then letting the HTTP client resolve it again leaves a gap a
rebinding DNS server uses: public at the check, 127.0.0.1 at the connection. So the
dispatcher resolves once, checks every address (``service.delivery_target``) and pins
the one to connect to for the request (``pinned``); the network backend below dials
that address in place of the name. Everything else still comes from the URL: the
``Host`` header, and for https the TLS server name and the certificate check, which
httpcore takes from the URL's host, not from the address dialled.

A pooled connection is reused only for its own host and port, and it was opened to an
address checked when it was opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore
import httpx

from supportdesk.webhooks.addresses import IPAddress


@dataclass(frozen=True)
class Pin:
    host: str
    port: int
    address: str


_pin: ContextVar[Pin | None] = ContextVar("webhook_pin", default=None)


@contextmanager
def pinned(host: str, port: int, address: IPAddress) -> Iterator[None]:
    """Requests to ``host:port`` made inside the block connect to ``address``."""
    token = _pin.set(Pin(host, port, str(address)))
    try:
        yield
    finally:
        _pin.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials the pinned address for the pinned host and port; anything else fails
    closed, so no connection is ever made to an address nobody checked."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _pin.get()
        if pin is None or (pin.host, pin.port) != (host, port):
            raise httpcore.ConnectError(f"no checked address to connect to for {host}:{port}")
        return await self.backend.connect_tcp(
            pin.address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's defaults."""


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose backend is ``PinnedBackend``."""

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits = LIMITS,
    ) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx offers no parameter for the network backend; its pool is built the same
        # way, with the backend added (proxies stay out: they would resolve the name).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(backend),
        )


def delivery_client(
    timeout: float, backend: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncClient:
    """The dispatcher's client: pinned connections, no redirects, no proxies from the
    environment (a proxy would resolve the host name itself)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(backend),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
