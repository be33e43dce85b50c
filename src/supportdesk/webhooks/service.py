"""Webhook subscriptions, and the URL rules every subscription must meet."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.domain.errors import RuleViolation
from supportdesk.errors import NotFound
from supportdesk.kit.auth import Principal, Role
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import WebhookDelivery, WebhookSubscription
from supportdesk.webhooks.repository import WebhookRepository
from supportdesk.webhooks.schemas import WebhookCreate


class InvalidWebhookUrl(RuleViolation):
    """The URL is not one deliveries may go to."""


def check_url_form(url: str) -> tuple[str, int]:
    """http or https, a host, no credentials: the host and port to deliver to."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise InvalidWebhookUrl("the webhook URL cannot be parsed") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("a webhook URL is http or https")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("a webhook URL carries no credentials; sign with the secret")
    if not parts.hostname:
        raise InvalidWebhookUrl("a webhook URL names a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidWebhookUrl("the webhook URL's port is not a number") from exc
    return parts.hostname, port


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


async def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuse URLs whose host resolves to a private, loopback or otherwise internal
    address (checked again at every delivery, against DNS changes)."""
    host, port = check_url_form(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidWebhookUrl(f"the webhook host {host!r} does not resolve") from exc
    if not infos or not all(_is_public(str(info[4][0])) for info in infos):
        raise InvalidWebhookUrl(
            "the webhook host resolves to a private or loopback address "
            "(allowed only with SUPPORTDESK_WEBHOOKS_ALLOW_PRIVATE=true)"
        )


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
        await check_url_target(data.url, allow_private=self.allow_private)
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
