from __future__ import annotations

from supportdesk.errors import problem_responses
from supportdesk.health.schemas import Liveness, Readiness
from supportdesk.health.service import HealthService
from supportdesk.kit.auth import SessionDep
from supportdesk.kit.routing import APIRouter

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Liveness, name="health_live")
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/ready", response_model=Readiness, name="health_ready", responses=problem_responses(503)
)
async def ready(session: SessionDep) -> Readiness:
    await HealthService(session).check_ready()
    return Readiness()
