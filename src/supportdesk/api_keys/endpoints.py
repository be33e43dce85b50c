from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from supportdesk.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from supportdesk.api_keys.service import ApiKeyService
from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])

Admin = Annotated[Principal, Allowed(Permission.manage_api_keys)]
KeyId = Annotated[str, Path(max_length=255)]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    name="api_keys_create",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_api_key(
    body: ApiKeyCreate, principal: Admin, session: SessionDep, response: Response
) -> ApiKeyCreated:
    # The secret is shown once: no cache keeps it, and idempotent replays leave it out.
    response.headers["Cache-Control"] = "no-store"
    issued = await ApiKeyService(session).issue_key(body, issued_by=principal.key_id)
    shown = ApiKeyRead.model_validate(issued.key).model_dump()
    return ApiKeyCreated(**shown, key=issued.secret)


@router.get(
    "",
    response_model=Page[ApiKeyRead],
    name="api_keys_list",
    responses=problem_responses(401, 403, 422),
)
async def list_api_keys(_: Admin, session: SessionDep, page: PageDep) -> Page[ApiKeyRead]:
    keys, next_cursor = await ApiKeyService(session).list_keys(page)
    return Page(items=[ApiKeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.get(
    "/{key_id}",
    response_model=ApiKeyRead,
    name="api_keys_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_api_key(key_id: KeyId, _: Admin, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await ApiKeyService(session).get_key(key_id))


@router.delete(
    "/{key_id}",
    status_code=204,
    name="api_keys_revoke",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_key(key_id: KeyId, _: Admin, session: SessionDep) -> Response:
    await ApiKeyService(session).revoke_key(key_id)
    return Response(status_code=204)
