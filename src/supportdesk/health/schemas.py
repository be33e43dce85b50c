from __future__ import annotations

from typing import Literal

from supportdesk.kit.schemas import ResponseModel


class Liveness(ResponseModel):
    status: Literal["ok"] = "ok"


class Readiness(ResponseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
