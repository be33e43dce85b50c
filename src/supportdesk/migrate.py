"""Alembic, driven from code: used by the CLI, by ``serve`` on SQLite and by the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import supportdesk


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


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Fails when the models and the migrations disagree."""
    command.check(alembic_config(database_url))
