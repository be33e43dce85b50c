"""One JSON log line per request, and an ``X-Request-ID`` on every answer.

The line carries method, route template, status, duration, request id and the calling
key's id - never a secret, a query value or a body.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from enum import Enum
from typing import Any

from pydantic_core import to_json
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.errors import unexpected_problem
from supportdesk.metrics.service import observe_request

access_logger = logging.getLogger("supportdesk.access")
REQUEST_ID = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class JsonFormatter(logging.Formatter):
    """Log records as one JSON object per line."""

    def __init__(self) -> None:
        super().__init__()
        # The timestamp's whole-second part, for the second it was made in: one access
        # line per request would otherwise format the same second again and again.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:
            # pydantic's serializer: a fraction of json.dumps' time on every access line.
            return to_json(line, fallback=str).decode()
        except ValueError:  # what it refuses (a lone surrogate) json.dumps writes escaped
            return json.dumps(line, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime


def configure_logging(level: str) -> None:
    """JSON lines on standard error for the service's own loggers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("supportdesk")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


class _Progress(Enum):
    NOT_STARTED = "not started"
    STARTED = "started"
    COMPLETE = "complete"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID, "")
        request_id = given if _VALID_ID.match(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response = _Progress.NOT_STARTED

        async def send_with_id(message: Message) -> None:
            nonlocal status, response
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID] = request_id
                response = _Progress.STARTED
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                response = _Progress.COMPLETE
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here rather than left to the server: an exception that reaches
            # the server makes it close the connection, and a client's next request on
            # the keep-alive connection would meet a reset.
            if response is _Progress.STARTED:
                raise  # half an answer sent: only closing the connection tells the client
            if response is _Progress.NOT_STARTED:
                problem = unexpected_problem(scope["method"], _route_template(scope), exc)
                await problem(scope, receive, send_with_id)
            else:
                access_logger.error("error after the answer was sent", exc_info=exc)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            observe_request(scope["method"], route, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                principal = scope.get("state", {}).get("principal")
                access_logger.info(
                    "request",
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "request_id": request_id,
                            "key_id": getattr(principal, "key_id", None),
                        }
                    },
                )
