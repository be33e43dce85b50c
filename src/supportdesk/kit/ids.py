"""Opaque, time-ordered ids.

A ULID-style body (48-bit millisecond timestamp + 80 random bits, Crockford base32) behind
a short type prefix: ids sort in creation order, which the keyset cursors rely on, and a
support engineer can tell a ticket id from a customer id at a glance.
"""

from __future__ import annotations

import os
import re
import threading
import time

from starlette.convertors import Convertor, register_url_convertor

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``cus_01JD3…``; strictly increasing within this process."""
    global _last_ms, _last_rand
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            # Same millisecond (or a clock step back): keep monotonic by incrementing.
            now_ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = now_ms, rand
    return f"{prefix}_{_encode(now_ms, 10)}{_encode(rand & ((1 << 80) - 1), 16)}"


def id_segment(name: str, *, besides: str) -> str:
    """The path segment ``{name}`` for an id that sits beside a static route: it never
    matches ``besides``. ``GET /remote-sessions/join`` is then the ``join`` action asked
    with the wrong method (405, ``Allow: POST``), not a lookup of a session named "join".
    The OpenAPI document shows the plain ``{name}``."""

    class IdSegment(Convertor[str]):
        regex = f"(?!{re.escape(besides)}(?:/|$))[^/]+"

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: str) -> str:
            return value

    convertor = f"{name}_besides_{besides}"
    register_url_convertor(convertor, IdSegment())
    return f"{{{name}:{convertor}}}"
