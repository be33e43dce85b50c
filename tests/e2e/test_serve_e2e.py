"""The README's run path, for real: `supportdesk serve` on the embedded default.

A fresh folder, no configuration: the server brings the SQLite schema up to date by
itself, answers /health/ready, and the first admin key from the command line works.
With `--workers 2`, the workers do not outlive a killed supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

READY_WITHIN_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTDESK_")}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supportdesk.cli", *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def serving(
    folder: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`supportdesk serve` in ``folder`` on the embedded default, until it is ready."""
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "supportdesk.cli", "serve", "--port", str(port)],
        cwd=folder,
        env={**_clean_env(), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + READY_WITHIN_SECONDS
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("server not ready:\n" + (folder / "server.log").read_text())
            time.sleep(0.1)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serving(tmp_path) as (port, _):
        yield f"http://127.0.0.1:{port}", tmp_path


class TestServeOnEmbeddedDefault:
    def test_ready_then_cli_key_works_and_revocation_bites(self, server: tuple[str, Path]) -> None:
        base, folder = server
        assert (folder / "supportdesk.db").exists()

        created = _cli("api-key", "create", "--role", "admin", cwd=folder)
        assert created.returncode == 0, created.stderr
        lines = created.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sdk_")
        admin = {"Authorization": f"Bearer {lines[0]}"}

        listed = httpx.get(f"{base}/api/v1/customers", headers=admin)
        assert listed.status_code == 200
        assert listed.json() == {"items": [], "next_cursor": None}

        agent = httpx.post(
            f"{base}/api/v1/api-keys", json={"name": "a", "role": "agent"}, headers=admin
        ).json()
        agent_headers = {"Authorization": f"Bearer {agent['key']}"}
        assert httpx.get(f"{base}/api/v1/customers", headers=agent_headers).status_code == 200
        forbidden = httpx.post(
            f"{base}/api/v1/api-keys", json={"name": "b", "role": "agent"}, headers=agent_headers
        )
        assert forbidden.status_code == 403
        assert (
            httpx.delete(f"{base}/api/v1/api-keys/{agent['id']}", headers=admin).status_code == 204
        )
        refused = httpx.get(f"{base}/api/v1/customers", headers=agent_headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")


class TestCli:
    def test_customer_key_needs_customer_id(self, tmp_path: Path) -> None:
        result = _cli("api-key", "create", "--role", "customer", cwd=tmp_path)
        assert result.returncode != 0
        assert result.stdout == ""
        assert "customer_id" in result.stderr

    def test_customer_key_for_unknown_customer_fails(self, tmp_path: Path) -> None:
        result = _cli(
            "api-key", "create", "--role", "customer", "--customer-id", "cus_x", cwd=tmp_path
        )
        assert result.returncode == 1
        assert result.stdout == ""

    def test_openapi_command_prints_the_document(self, tmp_path: Path) -> None:
        result = _cli("openapi", cwd=tmp_path)
        assert result.returncode == 0
        assert '"openapi"' in result.stdout


def _workers(pid: int) -> list[int]:
    """The live uvicorn workers (multiprocessing children) of supervisor ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and _alive(int(entry.name)):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                if parent == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
class TestWorkersWithoutSupervisor:
    def test_workers_stop_when_the_supervisor_is_killed(
        self, database_url: str, tmp_path: Path
    ) -> None:
        # uvicorn's workers went on serving after a SIGKILL of the supervisor, holding the
        # port: nobody replaced them when they died and a restart could not bind.
        port = _free_port()
        log = (tmp_path / "server.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supportdesk.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            cwd=tmp_path,
            env={**_clean_env(), "SUPPORTDESK_DATABASE_URL": database_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + READY_WITHIN_SECONDS
            while True:
                with contextlib.suppress(httpx.TransportError):
                    ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                    if ready.status_code == 200 and len(_workers(process.pid)) == 2:
                        break
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            workers = _workers(process.pid)

            process.kill()
            process.wait()
            deadline = time.monotonic() + 15
            while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.1)

            assert [pid for pid in workers if _alive(pid)] == []
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))  # free again for a restarted service
            assert "the supervisor" in (tmp_path / "server.log").read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log.close()


def _start_serve(database_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = (folder / "server.log").open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "supportdesk.cli", "serve", "--port", str(port)],
        cwd=folder,
        env={**_clean_env(), "SUPPORTDESK_DATABASE_URL": database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return process, base
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("server not ready:\n" + (folder / "server.log").read_text())
        time.sleep(0.1)


class TestGracefulShutdown:
    def test_sigterm_during_a_slow_upload_still_answers_it_and_keeps_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        key = subprocess.run(
            [sys.executable, "-m", "supportdesk.cli", "api-key", "create", "--role", "admin"],
            cwd=tmp_path,
            env={**_clean_env(), "SUPPORTDESK_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        admin = {"Authorization": f"Bearer {key}"}
        process, base = _start_serve(database_url, tmp_path)
        try:
            customer = httpx.post(
                f"{base}/api/v1/customers", json={"name": "Slow Upload GmbH"}, headers=admin
            ).json()
            ticket = httpx.post(
                f"{base}/api/v1/tickets",
                json={
                    "customer_id": customer["id"],
                    "category": "how_to",
                    "severity": "normal",
                    "subject": "Log of a crash",
                    "description": "The log follows.",
                },
                headers=admin,
            ).json()
            boundary = "sdboundary7"
            content = b"2026-11-21 10:00:00 ERROR crash in export\n" * 5000
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nlog\r\n'
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    'filename="crash.log"\r\nContent-Type: text/plain\r\n\r\n'
                ).encode()
                + content
                + f"\r\n--{boundary}--\r\n".encode()
            )
            head = (
                f"POST /api/v1/tickets/{ticket['id']}/attachments HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            port = int(base.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=30) as upload:
                upload.sendall(head + body[: len(body) // 2])
                time.sleep(0.5)  # the request is in flight: its first half has arrived
                process.send_signal(signal.SIGTERM)
                time.sleep(1.0)
                # The server no longer accepts, but it is still there for the upload.
                with pytest.raises(httpx.TransportError):
                    httpx.get(f"{base}/health/live", timeout=2)
                assert process.poll() is None
                upload.sendall(body[len(body) // 2 :])
                answer = b""
                while chunk := upload.recv(65536):
                    answer += chunk
            assert b" 201 " in answer.partition(b"\r\n")[0], answer[:500]
            # uvicorn re-raises the signal once it has shut down gracefully.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

        # Acknowledged means kept: a new server shows the attachment, bytes intact.
        process, base = _start_serve(database_url, tmp_path)
        try:
            listed = httpx.get(
                f"{base}/api/v1/tickets/{ticket['id']}/attachments", headers=admin
            ).json()
            assert [(a["filename"], a["size"]) for a in listed["items"]] == [
                ("crash.log", len(content))
            ]
            downloaded = httpx.get(
                f"{base}/api/v1/tickets/{ticket['id']}/attachments/"
                f"{listed['items'][0]['id']}/content",
                headers=admin,
            )
            assert downloaded.content == content
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
