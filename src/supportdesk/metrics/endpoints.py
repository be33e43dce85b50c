from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from supportdesk.errors import NotFound
from supportdesk.kit.auth import SessionDep
from supportdesk.kit.routing import APIRouter
from supportdesk.metrics.service import MetricsService

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    name="metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
    description=(
        "Prometheus metrics; no API key. Switched off with SUPPORTDESK_METRICS_ENABLED=false."
    ),
)
async def metrics(request: Request, session: SessionDep) -> Response:
    if not request.app.state.settings.metrics_enabled:
        raise NotFound("Metrics are switched off.")
    body = await MetricsService(session, getattr(request.app.state, "engine", None)).exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
