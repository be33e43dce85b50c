"""Alembic, driven from code: used by the CLI, by ``serve`` on SQLite and by the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import supportdesk
from supportdesk.db_grants import (
    ONLY_POSTGRESQL,
    GrantError,
    apply_grants,
    check_role,
    check_role_name,
)


def migrations_dir() -> Path:
    """The ``migrations/`` folder: beside ``src/`` in a checkout, else in the working dir."""
    candidates = [
        Path(supportdesk.__file__).resolve().parents[2] / "migrations",
        Path.cwd() / "migrations",
    ]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the migrations folder was not found; run from the project folder")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option(
        "file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    # Alembic's ini interpolation would read "%" in a password as a format marker.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, app_role: str | None = None) -> None:
    """Apply the migrations; with ``app_role`` (PostgreSQL), grant the service's runtime
    role least privilege afterwards. The role is checked first, so a missing role stops
    the upgrade before it starts."""
    if app_role is not None:
        _preflight(database_url, app_role)
    command.upgrade(alembic_config(database_url), revision)
    if app_role is not None:
        grant(database_url, app_role)


def grant(database_url: str, app_role: str) -> None:
    """Grant the runtime role what db_grants lists and revoke the rest (repeatable)."""
    _preflight(database_url, app_role)
    asyncio.run(_run(database_url, app_role, grant=True))


def _preflight(database_url: str, app_role: str) -> None:
    check_role_name(app_role)
    # Checked on the URL: connecting would create an SQLite file.
    if make_url(database_url).get_backend_name() != "postgresql":
        raise GrantError(ONLY_POSTGRESQL)
    asyncio.run(_run(database_url, app_role, grant=False))


async def _run(database_url: str, app_role: str, *, grant: bool) -> None:
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            if grant:
                await apply_grants(conn, app_role)
            else:
                await check_role(conn, app_role)
    finally:
        await engine.dispose()


def check(database_url: str) -> None:
    """Fails when the models and the migrations disagree."""
    command.check(alembic_config(database_url))
