from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from supportdesk.kit.schemas import NOT_BLANK, RequestModel, ResponseModel, Stripped

PRODUCT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,5}([-+][0-9A-Za-z.-]{1,30})?$"

Version = Annotated[str, StringConstraints(max_length=50, pattern=VERSION_PATTERN)]


class ProductUpsert(RequestModel):
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), Stripped
    ]
    latest_version: Version | None = Field(
        default=None,
        description="The current release; older add-on versions on tickets are `outdated_version`.",
        examples=["2.10.0"],
    )


class ProductRead(ResponseModel):
    code: str
    name: str
    latest_version: str | None
    created_at: datetime
    updated_at: datetime
