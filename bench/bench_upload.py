"""A 1 GiB attachment streamed through the API: the server's memory must stay flat.

Starts `supportdesk serve` (one worker, SQLite in a temporary folder), uploads a 1 GiB
database backup as multipart, and reads the server's resident memory before the upload
(VmRSS) and its peak afterwards (VmHWM) from /proc. Checks the SHA-256 the server
recorded and writes bench/results/upload.json. Target: growth below 64 MiB.

    python bench/bench_upload.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from common import RESULTS, cli, memory_kib, running_server, service_env

CHUNK = 1024 * 1024
LIMIT_MIB = 64


def _body(boundary: str, mib: int, digest: hashlib._Hash) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n'
        f'database_backup\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="backup.bak"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    block = os.urandom(CHUNK)
    for i in range(mib):
        chunk = block[i % 251 :] + block[: i % 251]  # cheap, and not one repeated block
        digest.update(chunk)
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="supportdesk-upload-"))
    env = service_env()
    try:
        key = cli(env, "api-key", "create", "--role", "admin", cwd=folder)
        headers = {"Authorization": f"Bearer {key}"}
        with (
            running_server(env, cwd=folder) as (base, server),
            httpx.Client(base_url=base, timeout=600) as http,
        ):
            customer = http.post("/api/v1/customers", json={"name": "Big"}, headers=headers).json()
            ticket = http.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer["id"],
                    "category": "database_defect",
                    "severity": "high",
                    "subject": "Broken DB",
                    "description": "See backup.",
                },
                headers=headers,
            ).json()
            baseline = memory_kib(server.pid, "VmRSS")
            digest = hashlib.sha256()
            boundary = "supportdesk-bench-boundary"
            started = time.perf_counter()
            response = http.post(
                f"/api/v1/tickets/{ticket['id']}/attachments",
                content=_body(boundary, args.mib, digest),
                headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            seconds = time.perf_counter() - started
            peak = memory_kib(server.pid, "VmHWM")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert response.status_code == 201, response.text
    attachment = response.json()
    result = {
        "upload_mib": args.mib,
        "seconds": round(seconds, 1),
        "mib_per_second": round(args.mib / seconds, 1),
        "server_rss_before_mib": round(baseline / 1024, 1),
        "server_peak_rss_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - baseline) / 1024, 1),
        "limit_mib": LIMIT_MIB,
        "sha256_matches": attachment["sha256"] == digest.hexdigest(),
        "size_matches": attachment["size"] == args.mib * CHUNK,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "upload.json").write_text(json.dumps(result, indent=2) + "\n")
    ok = result["growth_mib"] < LIMIT_MIB and result["sha256_matches"] and result["size_matches"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
