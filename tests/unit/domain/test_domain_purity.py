"""The domain core imports the standard library and itself, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import supportdesk.domain

DOMAIN_DIR = Path(supportdesk.domain.__file__).parent
MODULES = sorted(DOMAIN_DIR.rglob("*.py"))
ALLOWED_PREFIX = "supportdesk.domain"


def imported_modules(tree: ast.Module, depth: int = 0) -> list[tuple[int, str]]:
    """(line, module) for every import; ``depth`` is how far below ``domain/`` the file is.

    A relative import counts as a domain import unless its dots climb out of ``domain/``.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                inside = node.level - 1 <= depth
                found.append((node.lineno, ALLOWED_PREFIX if inside else "<outside domain>"))
            else:
                found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.append((node.lineno, "<dynamic __import__>"))
    return found


def allowed(name: str) -> bool:
    top = name.split(".")[0]
    if name == ALLOWED_PREFIX or name.startswith(ALLOWED_PREFIX + "."):
        return True
    return top in sys.stdlib_module_names and top != "supportdesk"


def test_there_are_domain_modules() -> None:
    names = {path.stem for path in MODULES}
    assert {"calendar", "groups", "tickets", "sla", "blockers", "billing", "errors"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_only_stdlib_and_domain(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    depth = len(path.relative_to(DOMAIN_DIR).parts) - 1
    bad = [
        f"{path.name}:{line}: {name}"
        for line, name in imported_modules(tree, depth)
        if not allowed(name)
    ]
    assert not bad, "the domain core must stay pure:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "from fastapi import APIRouter",
        "import pydantic.fields",
        "from starlette.requests import Request",
        "import holidays",
        "from supportdesk.config import Settings",
        "from supportdesk import db",
        "from .. import config",
        "__import__('httpx')",
    ],
)
def test_the_check_catches_forbidden_imports(source: str) -> None:
    names = [name for _, name in imported_modules(ast.parse(source))]
    assert not all(allowed(name) for name in names)


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime",
        "import zoneinfo",
        "from . import calendar",
        "from .errors import DomainError",
        "from supportdesk.domain.calendar import BusinessCalendar",
        "from collections.abc import Iterable",
    ],
)
def test_the_check_allows_stdlib_and_domain(source: str) -> None:
    assert all(allowed(name) for _, name in imported_modules(ast.parse(source)))
