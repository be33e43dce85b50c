"""Attack cases of issue 14, on both databases: nothing of a body is read before its
caller is known and allowed, uploads are judged before their file streams, and the order
of checks is the same for every request.

The request bodies here are generators that count what the service pulled from them
(httpx's ASGI transport hands the app a chunk only when it asks for one), so "refused
before reading" is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from test_serve_e2e import _free_port, serving

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings
from supportdesk.models import Customer, IdempotencyRecord

pytestmark = pytest.mark.security

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BOUNDARY = "sd-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK = 64 * 1024
KIB = 1024


class Body:
    """A request body from parts, streamed in chunks, counting what was pulled."""

    def __init__(self, *parts: bytes, filler: int = 0, after: bytes = b"") -> None:
        self.parts = parts
        self.filler = filler
        self.after = after
        self.pulled = 0

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts) + self.filler + len(self.after)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.pulled += len(part)
            yield part
        left = self.filler
        while left > 0:
            piece = b"\x00" * min(CHUNK, left)
            left -= len(piece)
            self.pulled += len(piece)
            yield piece
        if self.after:
            self.pulled += len(self.after)
            yield self.after


def field(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(name: str = "file", filename: str = "shot.png", ctype: str = "image/png") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="{name}"; filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
    ).encode()


CLOSE = f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_body(size: int, *, kind_first: str | None = None, kind_after: str | None = None) -> Body:
    parts = [field("kind", kind_first)] if kind_first else []
    parts += [file_head(), PNG]
    after = CLOSE if kind_after is None else b"\r\n" + field("kind", kind_after) + CLOSE[2:]
    return Body(*parts, filler=max(0, size - len(PNG)), after=after)


def incoming_files(settings: Settings) -> list[Path]:
    folder = Path(settings.attachments_dir) / "incoming"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def new_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    response = await client.post("/api/v1/customers", json={"name": "Maier"}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_ticket(client: httpx.AsyncClient, headers: dict[str, str], customer_id: str) -> str:
    response = await client.post(
        "/api/v1/tickets",
        json={
            "customer_id": customer_id,
            "category": "bug_report",
            "severity": "normal",
            "subject": "Import fails",
            "description": "The import stops with an error.",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def attachments_of(client: httpx.AsyncClient, admin: dict[str, str], ticket: str) -> list:
    listed = await client.get(f"/api/v1/tickets/{ticket}/attachments", headers=admin)
    assert listed.status_code == 200
    return list(listed.json()["items"])


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


class TestBodiesBeforeTheCaller:
    async def test_multipart_without_a_key_is_401_before_any_body(
        self, client: httpx.AsyncClient
    ) -> None:
        body = Body(file_head(), filler=64 * 1024 * 1024, after=CLOSE)
        response = await client.post(
            "/api/v1/customers",
            content=body,
            headers={"content-type": MULTIPART, "content-length": str(body.size)},
        )
        assert_problem(response, 401)
        assert body.pulled == 0

    async def test_a_bogus_key_with_an_idempotency_key_spools_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        for path in ("/api/v1/customers", "/api/v1/tickets/tkt_nope/attachments"):
            body = Body(file_head(), filler=8 * 1024 * 1024, after=CLOSE)
            response = await client.post(
                path,
                content=body,
                headers={
                    "content-type": MULTIPART,
                    "authorization": "Bearer sdk_not-a-key",
                    "idempotency-key": "k-1",
                },
            )
            assert_problem(response, 401)
            assert body.pulled == 0
        stored = await session.scalar(select(func.count()).where(IdempotencyRecord.key == "k-1"))
        assert stored == 0

    async def test_multipart_to_a_json_route_is_422_unread(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        before = await session.scalar(select(func.count()).select_from(Customer))
        body = Body(field("name", "Maier"), filler=4 * 1024 * 1024, after=CLOSE)
        response = await client.post(
            "/api/v1/customers", content=body, headers={**admin, "content-type": MULTIPART}
        )
        assert_problem(response, 422)
        assert response.json()["errors"][0]["loc"] == ["header", "content-type"]
        assert body.pulled == 0
        assert await session.scalar(select(func.count()).select_from(Customer)) == before

    async def test_a_role_that_may_not_is_403_unread(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer_id = await new_customer(client, admin)
        customer = await headers_for("customer", customer_id)
        body = Body(b'{"name": "x", "role": "admin"', filler=512 * 1024, after=b"}")
        response = await client.post(
            "/api/v1/api-keys",
            content=body,
            headers={**customer, "content-type": "application/json"},
        )
        assert_problem(response, 403)
        assert body.pulled == 0

    async def test_a_refusal_names_every_permission_that_would_do(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        integration = await headers_for("integration")
        response = await client.get(
            "/api/v1/remote-sessions/rs_01NOSUCHSESSION", headers=integration
        )
        assert_problem(response, 403)
        assert response.json()["detail"] == (
            "The role 'integration' may not run_sessions or join_sessions."
        )

    async def test_a_declared_length_above_the_limit_is_413_unread(
        self, client: httpx.AsyncClient, admin, settings: Settings
    ) -> None:
        body = Body(b"{", filler=settings.max_json_body_bytes + 1, after=b"}")
        response = await client.post(
            "/api/v1/customers",
            content=body,
            headers={**admin, "content-type": "application/json", "content-length": str(body.size)},
        )
        assert_problem(response, 413)
        assert body.pulled == 0


class TestUploadsJudgedBeforeTheyStream:
    async def test_another_customers_ticket_is_404_before_the_file(
        self, client: httpx.AsyncClient, admin, headers_for, settings: Settings
    ) -> None:
        mine = await new_customer(client, admin)
        theirs = await new_ticket(client, admin, await new_customer(client, admin))
        customer = await headers_for("customer", mine)
        for ticket, headers in ((theirs, customer), ("tkt_01NOSUCHTICKET", admin)):
            body = upload_body(2 * 1024 * 1024, kind_first="log")
            response = await client.post(
                f"/api/v1/tickets/{ticket}/attachments",
                content=body,
                headers={**headers, "content-type": MULTIPART},
            )
            assert_problem(response, 404)
            assert body.pulled == 0
        assert incoming_files(settings) == []
        assert await attachments_of(client, admin, theirs) == []

    @pytest.mark.parametrize("where", ["query", "field"])
    async def test_a_kind_known_first_stops_the_stream_past_its_limit(
        self, client: httpx.AsyncClient, admin, settings: Settings, where: str
    ) -> None:
        settings.attachment_max_bytes["screenshot"] = 100 * KIB
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        body = upload_body(8 * 1024 * 1024, kind_first="screenshot" if where == "field" else None)
        query = "?kind=screenshot" if where == "query" else ""
        response = await client.post(
            f"/api/v1/tickets/{ticket}/attachments{query}",
            content=body,
            headers={**admin, "content-type": MULTIPART},
        )
        assert_problem(response, 413)
        # The stream stopped within a chunk of the first byte past the limit.
        assert body.pulled <= 100 * KIB + 2 * CHUNK
        assert incoming_files(settings) == []
        assert await attachments_of(client, admin, ticket) == []

    async def test_a_kind_after_the_file_is_judged_once_the_file_is_in(
        self, client: httpx.AsyncClient, admin, settings: Settings
    ) -> None:
        settings.attachment_max_bytes["screenshot"] = 100 * KIB
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        body = upload_body(300 * KIB, kind_after="screenshot")
        response = await client.post(
            f"/api/v1/tickets/{ticket}/attachments",
            content=body,
            headers={**admin, "content-type": MULTIPART},
        )
        assert_problem(response, 413)
        assert incoming_files(settings) == []
        assert await attachments_of(client, admin, ticket) == []

    async def test_the_kind_in_query_and_form_must_agree(
        self, client: httpx.AsyncClient, admin, settings: Settings
    ) -> None:
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        response = await client.post(
            f"/api/v1/tickets/{ticket}/attachments?kind=screenshot",
            files={"file": ("a.log", b"line\n", "text/plain")},
            data={"kind": "log"},
            headers=admin,
        )
        assert_problem(response, 422)
        assert await attachments_of(client, admin, ticket) == []
        assert incoming_files(settings) == []

    async def test_an_unknown_kind_in_the_query_is_422_unread(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        body = upload_body(1024 * 1024)
        response = await client.post(
            f"/api/v1/tickets/{ticket}/attachments?kind=selfie",
            content=body,
            headers={**admin, "content-type": MULTIPART},
        )
        assert_problem(response, 422)
        assert body.pulled == 0

    async def test_the_customers_quota_is_413_before_and_after(
        self, client: httpx.AsyncClient, admin, settings: Settings
    ) -> None:
        settings.attachment_quota_bytes = 300 * KIB
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        url = f"/api/v1/tickets/{ticket}/attachments?kind=log"
        first = await client.post(
            url, files={"file": ("a.log", b"x" * 200 * KIB, "text/plain")}, headers=admin
        )
        assert first.status_code == 201, first.text
        # 100 KiB left: a 150 KiB file stops at the quota while it streams.
        over = await client.post(
            url, files={"file": ("b.log", b"x" * 150 * KIB, "text/plain")}, headers=admin
        )
        assert_problem(over, 413)
        fits = await client.post(
            url, files={"file": ("c.log", b"x" * 100 * KIB, "text/plain")}, headers=admin
        )
        assert fits.status_code == 201, fits.text
        # Used up: refused before any of the body is read.
        body = upload_body(10 * KIB)
        full = await client.post(url, content=body, headers={**admin, "content-type": MULTIPART})
        assert_problem(full, 413)
        assert body.pulled == 0
        names = sorted(a["filename"] for a in await attachments_of(client, admin, ticket))
        assert names == ["a.log", "c.log"]
        assert incoming_files(settings) == []

    async def test_a_body_without_its_closing_boundary_stores_nothing(
        self, client: httpx.AsyncClient, admin, settings: Settings
    ) -> None:
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        body = Body(field("kind", "log"), file_head(filename="a.log", ctype="text/plain"), b"hi")
        response = await client.post(
            f"/api/v1/tickets/{ticket}/attachments",
            content=body,
            headers={**admin, "content-type": MULTIPART},
        )
        assert_problem(response, 422)
        assert await attachments_of(client, admin, ticket) == []
        assert incoming_files(settings) == []


class TestServedAttachments:
    @pytest.mark.parametrize(
        ("declared", "served"),
        [
            ("text/html", "application/octet-stream"),
            ("image/svg+xml", "application/octet-stream"),
            ("application/javascript", "application/octet-stream"),
            ("application/pdf", "application/pdf"),
            ("text/plain", "text/plain"),
        ],
    )
    async def test_only_inert_types_are_served_as_themselves(
        self, client: httpx.AsyncClient, admin, declared: str, served: str
    ) -> None:
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        uploaded = await client.post(
            f"/api/v1/tickets/{ticket}/attachments?kind=document",
            files={"file": ("page", b"<script>alert(1)</script>", declared)},
            headers=admin,
        )
        assert uploaded.status_code == 201, uploaded.text
        content = await client.get(
            f"/api/v1/tickets/{ticket}/attachments/{uploaded.json()['id']}/content", headers=admin
        )
        assert content.status_code == 200
        assert content.headers["content-type"].split(";")[0] == served
        assert content.headers["content-disposition"].startswith("attachment")
        assert content.headers["x-content-type-options"] == "nosniff"

    async def test_bidi_controls_are_stripped_from_file_names(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        ticket = await new_ticket(client, admin, await new_customer(client, admin))
        uploaded = await client.post(
            f"/api/v1/tickets/{ticket}/attachments?kind=document",
            files={"file": ("invoice\u202egpj.exe\u2066x\u2069", b"MZ", "text/plain")},
            headers=admin,
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["filename"] == "invoicegpj.exex"


class TestOrderOfChecks:
    async def test_a_reused_key_on_a_forbidden_route_stays_403(
        self, client: httpx.AsyncClient, admin, headers_for, session: AsyncSession
    ) -> None:
        customer = await headers_for("customer", await new_customer(client, admin))
        headers = {**customer, "Idempotency-Key": "same-key"}
        first = await client.post(
            "/api/v1/api-keys", json={"name": "a", "role": "admin"}, headers=headers
        )
        second = await client.post(
            "/api/v1/api-keys", json={"name": "b", "role": "agent"}, headers=headers
        )
        assert_problem(first, 403)
        assert_problem(second, 403)
        stored = await session.scalar(
            select(func.count()).where(IdempotencyRecord.key == "same-key")
        )
        assert stored == 0

    async def test_the_lockout_holds_for_posts_with_an_idempotency_key(
        self, database_url: str
    ) -> None:
        fresh = await live_admin_headers(database_url)  # never used, so not remembered
        wrong = {"Authorization": "Bearer sdk_this-key-does-not-exist"}
        limits = {"rate_limit_auth_failures": 2, "rate_limit_window_seconds": 60}
        # Keys are remembered for a while (the default): a lookup made ahead of the
        # lockout check would let the request past it.
        async with live_client(database_url, **limits) as http:
            for attempt in range(2):
                response = await http.get("/api/v1/customers", headers=wrong)
                if response.status_code == 429:  # the window was used by another test
                    break
                assert_problem(response, 401)
                assert attempt < 2
            for headers in (wrong, fresh):
                refused = await http.post(
                    "/api/v1/customers",
                    json={"name": "Locked out"},
                    headers={**headers, "Idempotency-Key": "lockout-probe"},
                )
                assert_problem(refused, 429)
            listed = await http.get("/api/v1/customers?q=Locked", headers=fresh)
            assert_problem(listed, 429)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class TestKeepAliveAfterAnError:
    async def test_the_connection_serves_the_next_request_after_a_500(self, app: FastAPI) -> None:
        @app.get("/boom-for-test")
        async def boom() -> None:
            raise RuntimeError("a defect")

        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
        )
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(500):  # uvicorn sets the flag once it listens
                if server.started:
                    break
                await asyncio.sleep(0.02)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = "GET {} HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"
            writer.write(request.format("/boom-for-test").encode())
            status, headers, body = await _read_response(reader)
            assert status == 500
            assert headers["content-type"].startswith("application/problem+json")
            assert b"a defect" not in body
            writer.write(request.format("/health/live").encode())
            status, _, _ = await asyncio.wait_for(_read_response(reader), 5)
            assert status == 200
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        finally:
            server.should_exit = True
            await serving


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """`supportdesk serve` on the embedded default, its temp folder a folder of the test's."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with serving(tmp_path, {"TMPDIR": str(temp)}) as (port, process):
        yield port, process, tmp_path


SENT_BYTES = 96 * 1024 * 1024
DECLARED_BYTES = 800 * 1024 * 1024


def _send_oversized(port: int, path: str, extra: str) -> int:
    """Declare 800 MiB of multipart, send 96 MiB of it, and read the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {MULTIPART}\r\n"
                f"Content-Length: {DECLARED_BYTES}\r\n{extra}\r\n"
            ).encode()
            + file_head()
        )
        chunk = b"\x00" * (1024 * 1024)
        with contextlib.suppress(ConnectionError):
            for _ in range(SENT_BYTES // len(chunk)):
                sock.sendall(chunk)
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1])


class TestOversizedBodiesOnARealServer:
    @pytest.mark.parametrize(
        ("path", "extra"),
        [
            ("/api/v1/customers", ""),
            ("/api/v1/customers", "Idempotency-Key: k-1\r\n"),
            ("/api/v1/tickets/tkt_x/attachments", "Authorization: Bearer sdk_bogus\r\n"),
            (
                "/api/v1/tickets/tkt_x/attachments?kind=database_backup",
                "Authorization: Bearer sdk_bogus\r\nIdempotency-Key: k-2\r\n",
            ),
        ],
    )
    def test_memory_and_disk_stay_flat_without_a_valid_key(
        self, served: tuple[int, subprocess.Popen[bytes], Path], path: str, extra: str
    ) -> None:
        port, process, folder = served
        before_rss = _rss_kib(process.pid)
        before_disk = _folder_bytes(folder / "tmp") + _folder_bytes(folder / "attachments")
        assert _send_oversized(port, path, extra) == 401
        grown_rss = _rss_kib(process.pid) - before_rss
        grown_disk = _folder_bytes(folder / "tmp") + _folder_bytes(folder / "attachments")
        assert grown_rss < 16 * 1024, f"the server grew by {grown_rss} KiB"
        assert grown_disk - before_disk == 0
        assert os.listdir(folder / "tmp") == []
