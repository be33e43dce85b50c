"""The runtime role's grant list: complete, deliberate, and only for PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import supportdesk.models  # noqa: F401 - registers every table on the metadata
from supportdesk import cli, migrate
from supportdesk.config import Settings, get_settings
from supportdesk.db import Base
from supportdesk.db_grants import (
    TABLE_PRIVILEGE_KINDS,
    TABLE_PRIVILEGES,
    GrantError,
    check_role_name,
)

APPEND_ONLY = {"ledger_entries", "audit_log"}


class TestGrantList:
    def test_every_table_of_the_models_is_listed(self) -> None:
        assert set(TABLE_PRIVILEGES) == set(Base.metadata.tables)

    def test_append_only_tables_can_only_be_read_and_appended(self) -> None:
        for table in APPEND_ONLY:
            assert TABLE_PRIVILEGES[table] == ("SELECT", "INSERT")

    def test_only_purged_tables_are_deleted_from(self) -> None:
        deleting = {table for table, grants in TABLE_PRIVILEGES.items() if "DELETE" in grants}
        assert deleting == {"idempotency_records", "rate_limit_windows"}

    def test_no_table_gets_truncate_references_or_trigger(self) -> None:
        for grants in TABLE_PRIVILEGES.values():
            assert set(grants) <= {"SELECT", "INSERT", "UPDATE", "DELETE"}
            assert set(grants) <= set(TABLE_PRIVILEGE_KINDS)
            assert "SELECT" in grants


class TestRoleName:
    @pytest.mark.parametrize("name", ["supportdesk_app", "app", "_svc", "a1", "x" * 63])
    def test_plain_names_are_accepted(self, name: str) -> None:
        check_role_name(name)
        assert Settings(database_app_role=name).database_app_role == name

    @pytest.mark.parametrize(
        "name",
        [
            "SupportDesk",
            "1app",
            "app-role",
            'app"; DROP TABLE ledger_entries; --',
            "app role",
            "x" * 64,
            "public",
            "pg_write_all_data",
        ],
    )
    def test_other_names_are_refused(self, name: str) -> None:
        with pytest.raises(GrantError, match="runtime role"):
            check_role_name(name)
        with pytest.raises(ValidationError, match="runtime role"):
            Settings(database_app_role=name)

    def test_empty_means_unset(self) -> None:
        assert Settings(database_app_role="").database_app_role is None
        assert Settings().database_app_role is None


class TestSqlite:
    def test_upgrade_refuses_a_runtime_role_on_sqlite(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
        with pytest.raises(GrantError, match="PostgreSQL only"):
            migrate.upgrade(url, app_role="supportdesk_app")
        assert not (tmp_path / "x.db").exists()

    def test_the_command_says_so_and_fails(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("SUPPORTDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        monkeypatch.setenv("SUPPORTDESK_DATABASE_APP_ROLE", "supportdesk_app")
        get_settings.cache_clear()
        try:
            assert cli.main(["db", "upgrade"]) == 1
            assert cli.main(["db", "grant"]) == 1
        finally:
            get_settings.cache_clear()
        assert "PostgreSQL only" in capsys.readouterr().err
        assert not (tmp_path / "x.db").exists()
