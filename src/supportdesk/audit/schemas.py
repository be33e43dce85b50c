from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from supportdesk.kit.schemas import ResponseModel


class AuditRead(ResponseModel):
    id: str
    at: datetime
    actor_key_id: str | None = Field(description="The API key that acted; null: the system.")
    actor_role: str
    action: str = Field(description="create, update, transition, revoke or delete")
    object_type: str
    object_id: str
    changes: dict[str, dict[str, Any]] = Field(description="{field: {before, after}}")
