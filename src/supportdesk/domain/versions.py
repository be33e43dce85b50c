"""Version numbers compared as versions, not as text: 2.10.0 > 2.9.0, 2.1 == 2.1.0.

Accepted: an optional ``v``, dot-separated numbers, then optionally a pre-release tag
(``-beta``, ``-rc.1``, ``rc1``, ``.dev3``) and build metadata after ``+``. The rules
follow Semantic Versioning where it has one:

- trailing zeros do not count (2.1 == 2.1.0);
- a pre-release sorts before its release (2.1.0-beta < 2.1.0 < 2.1.1-alpha);
- pre-release identifiers compare one by one, numbers numerically and below words,
  words case-insensitively (alpha < beta < rc, rc.2 < rc.10);
- build metadata is ignored (2.1.0+build7 == 2.1.0).

Anything else raises ``InvalidVersion``; nothing here crashes on odd input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from .errors import InvalidVersion

_VERSION = re.compile(
    r"""
    ^\s*v?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre>[a-z][0-9a-z]*(?:[-_.][0-9a-z]+)*|[-_][0-9a-z]+(?:[-_.][0-9a-z]+)*))?
    (?:\+[0-9a-z]+(?:[-_.][0-9a-z]+)*)?
    \s*$
    """,
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)
_PRE_PART = re.compile(r"\d+|[a-z]+", re.ASCII | re.IGNORECASE)

PreIdentifier = tuple[int, int, str]
"""(0, n, "") for a number, (1, 0, word) for a word: numbers sort below words."""


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A parsed version; equal versions compare and hash equal (2.1 == 2.1.0)."""

    release: tuple[int, ...]
    pre: tuple[PreIdentifier, ...] = ()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.pre)

    def _key(self) -> tuple[tuple[int, ...], int, tuple[PreIdentifier, ...]]:
        release = self.release
        while len(release) > 1 and release[-1] == 0:
            release = release[:-1]
        return release, (0 if self.pre else 1), self.pre

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def parse_version(text: str) -> Version:
    """Read ``text`` as a version or raise ``InvalidVersion``."""
    match = _VERSION.match(text)
    if match is None:
        raise InvalidVersion(text)
    release = tuple(int(part) for part in match["release"].split("."))
    pre_text = match["pre"] or ""
    pre = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in _PRE_PART.findall(pre_text)
    )
    return Version(release, pre)


@lru_cache(maxsize=1024)
def try_parse_version(text: str | None) -> Version | None:
    """The version, or None for a missing, blank or unreadable one.

    Cached: a queue names the same few versions over and over.
    """
    if text is None or not text.strip():
        return None
    try:
        return parse_version(text)
    except InvalidVersion:
        return None


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
    va, vb = parse_version(a), parse_version(b)
    return (va > vb) - (va < vb)
