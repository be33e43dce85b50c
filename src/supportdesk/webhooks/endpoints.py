from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import SettingsDep
from supportdesk.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookRead
from supportdesk.webhooks.service import WebhookService

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

Manager = Annotated[Principal, Allowed(Permission.manage_webhooks)]
WebhookId = Annotated[str, Path(max_length=255)]

SIGNING = (
    "Each delivery is a POST of `{id, type, occurred_at, data}` with the header "
    "`X-Supportdesk-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is HMAC-SHA256 with "
    "the subscription's secret over `<t>.<raw body>`. Receivers recompute it, compare in "
    "constant time and refuse old timestamps. Deliveries are retried with exponential "
    "backoff and jitter until a 2xx (at least once, in order per resource)."
)


@router.post(
    "",
    status_code=201,
    response_model=WebhookRead,
    name="webhooks_create",
    responses=problem_responses(401, 403, 422),
    description="Subscribes a URL to event types. " + SIGNING,
)
async def create_webhook(
    body: WebhookCreate, principal: Manager, session: SessionDep, settings: SettingsDep
) -> WebhookRead:
    service = WebhookService(session, principal, allow_private=settings.webhooks_allow_private)
    return WebhookRead.model_validate(await service.subscribe(body))


@router.get(
    "",
    response_model=Page[WebhookRead],
    name="webhooks_list",
    responses=problem_responses(401, 403, 422),
)
async def list_webhooks(
    principal: Manager, session: SessionDep, page: PageDep
) -> Page[WebhookRead]:
    rows, next_cursor = await WebhookService(session, principal).list_subscriptions(page)
    return Page(items=[WebhookRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    name="webhooks_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_webhook(
    webhook_id: WebhookId, principal: Manager, session: SessionDep
) -> WebhookRead:
    return WebhookRead.model_validate(
        await WebhookService(session, principal).get_subscription(webhook_id)
    )


@router.delete(
    "/{webhook_id}",
    status_code=204,
    name="webhooks_delete",
    responses=problem_responses(401, 403, 404, 422),
    description="Stops deliveries; the delivery log stays readable.",
)
async def delete_webhook(
    webhook_id: WebhookId, principal: Manager, session: SessionDep
) -> Response:
    await WebhookService(session, principal).unsubscribe(webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    name="webhooks_deliveries_list",
    responses=problem_responses(401, 403, 404, 422),
    description="Every delivery attempt: status code, whether it was delivered, latency.",
)
async def list_deliveries(
    webhook_id: WebhookId, principal: Manager, session: SessionDep, page: PageDep
) -> Page[DeliveryRead]:
    rows, next_cursor = await WebhookService(session, principal).list_deliveries(webhook_id, page)
    return Page(items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor)
