"""Every input the API takes is bounded, as its OpenAPI document says.

A sweep over the committed document (which a drift test keeps equal to the app's):
every string a client sends — in a path, a query or a JSON body — has a maxLength, an
enum, a date format or an anchored pattern without unbounded repetition; every list a
maxItems; every free-form object a maxProperties; every page size a maximum. What the
schema bounds, the app enforces with 422 (the schemathesis run checks that the
answers match the schema); bodies are bounded in bytes with 413 (test_hardening_e2e).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOCUMENT = json.loads(
    (Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text()
)
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
UNBOUNDED_REPEAT = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


def _bounded_pattern(pattern: str) -> bool:
    return (
        pattern.startswith("^") and pattern.endswith("$") and not UNBOUNDED_REPEAT.search(pattern)
    )


def _unbounded(schema: dict[str, Any], where: str, seen: frozenset[str]) -> Iterator[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _unbounded(SCHEMAS[name], f"{where}->{name}", seen | {name})
        return
    for combined in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(combined, []):
            yield from _unbounded(part, where, seen)
    kind = schema.get("type")
    if kind == "string" and not (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or schema.get("format") in ("date", "date-time", "binary")
        or _bounded_pattern(schema.get("pattern", ""))
    ):
        yield f"{where}: a string without a bound"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: a list without maxItems"
        yield from _unbounded(schema.get("items", {}), f"{where}[]", seen)
    for name, part in schema.get("properties", {}).items():
        yield from _unbounded(part, f"{where}.{name}", seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        if "maxProperties" not in schema:
            yield f"{where}: an object without maxProperties"
        yield from _unbounded(extra, f"{where}{{}}", seen)


def _operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield f"{method.upper()} {path}", operation


def test_every_input_is_bounded() -> None:
    found = []
    for name, operation in _operations():
        for parameter in operation.get("parameters", []):
            found += _unbounded(parameter["schema"], f"{name} {parameter['name']}", frozenset())
        for content in operation.get("requestBody", {}).get("content", {}).values():
            found += _unbounded(content["schema"], f"{name} body", frozenset())
    assert found == []


def test_every_page_size_has_a_maximum() -> None:
    limits = [
        (name, parameter["schema"])
        for name, operation in _operations()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "limit"
    ]
    assert limits, "the list endpoints take ?limit="
    assert [name for name, schema in limits if not 1 <= schema.get("maximum", 10**9) <= 100] == []


def test_the_sweep_sees_an_unbounded_field() -> None:
    loose = {"type": "object", "properties": {"note": {"type": "string"}}}
    assert list(_unbounded(loose, "x", frozenset())) == ["x.note: a string without a bound"]
    assert _bounded_pattern("^[A-Z]{3}$") and not _bounded_pattern("^[A-Z]+$")
