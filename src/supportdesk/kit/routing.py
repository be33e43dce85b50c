"""The routers of the resources: FastAPI's, skipped at once by a request not under them.

FastAPI looks for a request's route by asking every route of every included router in
turn, about 2 µs a route: a debit, 20 routes down the list, paid 0.04 ms for it, a
route of the last router 0.1 ms. A router here first compares the request's path with
the literal start all its paths share (``/api/v1/tickets``, ``/api/v1/customers/`` up to
the first parameter): no route of it can match a path that does not start so, for any
method, so the answer (a route, 405, 404, a redirect) is the one FastAPI would give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import fastapi
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from supportdesk.errors import leaf_routes


def _shared_start(paths: Iterable[str]) -> str:
    """The characters every path starts with, up to the first parameter."""
    heads = [path.split("{", 1)[0] for path in paths]
    if not heads:
        return ""
    first, last = min(heads), max(heads)
    shared = 0
    while shared < len(first) and first[shared] == last[shared]:
        shared += 1
    return first[:shared]


class APIRouter(fastapi.APIRouter):
    """An ``APIRouter`` whose routes a request outside its paths does not try.

    The paths are the routes' own: a router is included without a prefix of its own
    (``main.create_app``), as a router included under one would never match.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = ""
        self._head_of = -1

    def _shared_head(self) -> str:
        if self._head_of != len(self.routes):  # routes are added after construction
            self._head = _shared_start(
                route.path
                for route in leaf_routes(self.routes)
                if isinstance(getattr(route, "path", None), str)
            )
            self._head_of = len(self.routes)
        return self._head

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not get_route_path(scope).startswith(self._shared_head()):
            return Match.NONE, {}
        return super().matches(scope)
