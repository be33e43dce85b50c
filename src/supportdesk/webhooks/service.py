"""Webhook subscriptions, and the URL rules every subscription must meet."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.domain.errors import RuleViolation
from supportdesk.errors import InvalidInput, NotFound
from supportdesk.kit.auth import Principal, Role
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import WebhookDelivery, WebhookSubscription
from supportdesk.webhooks.addresses import IPAddress, judge
from supportdesk.webhooks.repository import WebhookRepository
from supportdesk.webhooks.schemas import WebhookCreate


class InvalidWebhookUrl(RuleViolation):
    """The URL is not one deliveries may go to."""


def _looks_like_ipv4(host: str) -> bool:
    """A host the C resolver reads as an IPv4 number though it is not four decimal
    numbers: ``2130706433``, ``0177.0.0.1``, ``0x7f.0.0.1``, ``127.1``."""
    if not host.isascii() or not host.replace(".", "").isalnum():
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def check_url_form(url: str) -> tuple[str, int]:
    """http or https, a host, no credentials, a port from 1 to 65535: the host and port
    to deliver to, as the HTTP client will connect (host in ASCII, IDNA-encoded)."""
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise InvalidWebhookUrl("the webhook URL cannot be parsed") from exc
    if parts.scheme not in ("http", "https") or parsed.scheme != parts.scheme:
        raise InvalidWebhookUrl("a webhook URL is http or https")
    if parts.username is not None or parts.password is not None or parsed.userinfo:
        raise InvalidWebhookUrl("a webhook URL carries no credentials; sign with the secret")
    host = parsed.raw_host.decode("ascii")
    if not parts.hostname or not host:
        raise InvalidWebhookUrl("a webhook URL names a host")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl("the webhook URL's port is a number from 1 to 65535") from exc
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not 1 <= port <= 65535 or port != (parsed.port or port):
        raise InvalidWebhookUrl("the webhook URL's port is a number from 1 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if _looks_like_ipv4(host):
            raise InvalidWebhookUrl(
                "a webhook URL writes an IPv4 address as four decimal numbers (203.0.113.7)"
            ) from None
    return host, port


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host``, in the resolver's order; an IP literal is itself."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidWebhookUrl(f"the webhook host {host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidWebhookUrl(f"the webhook host {host!r} does not resolve")
    return addresses


async def checked_address(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """Resolve ``host`` once and check every address it has: all must be globally
    routable (unless private ones are allowed). The address to connect to."""
    addresses = await resolve(host, port)
    if not allow_private:
        for address in addresses:
            verdict = judge(address)
            if not verdict.allowed:
                raise InvalidWebhookUrl(
                    f"the webhook host {host!r} resolves to {address} ({verdict.reason}); "
                    "webhooks go to globally routable addresses only "
                    "(others only with SUPPORTDESK_WEBHOOKS_ALLOW_PRIVATE=true)"
                )
    return addresses[0]


async def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to any address that is not globally routable.
    With private addresses allowed, the host is not looked up at all."""
    host, port = check_url_form(url)
    if not allow_private:
        await checked_address(host, port, allow_private=False)


async def delivery_target(url: str, *, allow_private: bool) -> tuple[str, int, IPAddress]:
    """The host and port of the URL and the address a delivery connects to, checked now:
    a host's addresses may have changed since it subscribed (DNS rebinding)."""
    host, port = check_url_form(url)
    return host, port, await checked_address(host, port, allow_private=allow_private)


class WebhookService:
    def __init__(
        self, session: AsyncSession, principal: Principal, *, allow_private: bool = False
    ) -> None:
        self.principal = principal
        self.allow_private = allow_private
        # An integration manages its own subscriptions; an admin sees all.
        owner = None if principal.role is Role.admin else principal.key_id
        self.webhooks = WebhookRepository(session, owner)

    async def subscribe(self, data: WebhookCreate) -> WebhookSubscription:
        try:
            await check_url_target(data.url, allow_private=self.allow_private)
        except InvalidWebhookUrl as exc:
            raise InvalidInput(str(exc), loc=["body", "url"]) from exc
        subscription = WebhookSubscription(
            id=new_id("whk"),
            url=data.url,
            events=sorted({e.value for e in data.events}),
            secret=data.secret,
            active=True,
            created_by=self.principal.key_id,
            created_at=utcnow(),
        )
        return await self.webhooks.add(subscription)

    async def get_subscription(self, subscription_id: str) -> WebhookSubscription:
        subscription = await self.webhooks.get_subscription(subscription_id)
        if subscription is None:
            raise NotFound.of("webhook", subscription_id)
        return subscription

    async def list_subscriptions(
        self, params: PageParams
    ) -> tuple[list[WebhookSubscription], str | None]:
        return await self.webhooks.list_subscriptions(params)

    async def unsubscribe(self, subscription_id: str) -> None:
        """Stop deliveries; the subscription and its delivery log stay readable."""
        subscription = await self.get_subscription(subscription_id)
        if subscription.active:
            subscription.active = False
            await self.webhooks.flush()

    async def list_deliveries(
        self, subscription_id: str, params: PageParams
    ) -> tuple[list[WebhookDelivery], str | None]:
        await self.get_subscription(subscription_id)
        return await self.webhooks.list_deliveries(subscription_id, params)
