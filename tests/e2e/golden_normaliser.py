"""Normalising captured answers for the golden-file tests (``test_*_golden_e2e.py``):
ids differ on every run, and instants too unless the test froze the clocks."""

from __future__ import annotations

import re

ID = re.compile(r"\b[a-z]{2,4}_[0-9A-Z]{26}\b")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
KEY_ID = re.compile(r"\bkey_[0-9A-Za-z]+\b")


class Normaliser:
    """Ids become ``<id n>`` in order of first appearance; instants become ``<instant>``,
    unless ``instants=False`` keeps them (a test whose every captured instant comes from
    a frozen clock)."""

    def __init__(self, *, instants: bool = True) -> None:
        self.ids: dict[str, str] = {}
        self.instants = instants

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id {len(self.ids) + 1}>")

    def __call__(self, text: str) -> str:
        text = ID.sub(self._id, KEY_ID.sub(self._id, text))
        return INSTANT.sub("<instant>", text) if self.instants else text
