"""Least privilege on PostgreSQL: what the service's runtime role may do, table by table.

The role that runs the migrations owns the tables; the service logs in as another role
that gets only what its queries need. The owner could disable the ledger's append-only
triggers (``ALTER TABLE … DISABLE TRIGGER``); the runtime role cannot, and it is not
granted UPDATE, DELETE or TRUNCATE on an append-only table in the first place.

``supportdesk db upgrade`` applies the grants after every upgrade, so a new table gets
its grants the moment it exists (no ``ALTER DEFAULT PRIVILEGES`` needed): everything the
role holds in the schema is revoked and granted again, in one transaction, then checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

APPEND: Final = ("SELECT", "INSERT")
CHANGE: Final = ("SELECT", "INSERT", "UPDATE")
CHANGE_AND_DELETE: Final = ("SELECT", "INSERT", "UPDATE", "DELETE")

# Every table of the models, with what the runtime role may do to it: deliberately per
# table, from what the repositories, kit/ and the background workers run. SELECT … FOR
# UPDATE needs UPDATE as well; INSERT … ON CONFLICT DO UPDATE needs UPDATE.
TABLE_PRIVILEGES: Final[Mapping[str, tuple[str, ...]]] = {
    # Append-only: the ledger (its triggers refuse UPDATE, DELETE and TRUNCATE too), the
    # audit trail, and the records nothing changes once written.
    "ledger_entries": APPEND,
    "audit_log": APPEND,
    "session_logs": APPEND,
    "statements": APPEND,  # issued and frozen
    "statement_lines": APPEND,
    "ticket_comments": APPEND,
    "ticket_attachments": APPEND,
    "ticket_escalations": APPEND,
    "ticket_pauses": APPEND,
    "webhook_deliveries": APPEND,
    "contacts": APPEND,
    # Changed in place, never deleted (revoked keys, ended sessions, inactive webhooks
    # and delivered jobs stay as records).
    "api_keys": CHANGE,  # revoked_at
    "customers": CHANGE,  # balance, settings
    "contracts": CHANGE,
    "products": CHANGE,  # PUT replaces
    "tickets": CHANGE,
    "remote_sessions": CHANGE,
    "session_join_attempts": CHANGE,  # failures, locked with FOR UPDATE
    "events": CHANGE,  # fanned_out, notified
    "notifications": CHANGE,  # the mailer's attempts
    "webhook_subscriptions": CHANGE,  # active
    "webhook_jobs": CHANGE,  # the dispatcher's attempts
    "webhook_url_leases": CHANGE,
    "statement_counters": CHANGE,  # the year's last number
    # Purged by the housekeeping loop, and released by a failed request (idempotency).
    "idempotency_records": CHANGE_AND_DELETE,
    "rate_limit_windows": CHANGE_AND_DELETE,
}
SEQUENCE_PRIVILEGES: Final = ("USAGE", "SELECT")
# What has_table_privilege knows on PostgreSQL 15; whatever is not granted must be absent.
TABLE_PRIVILEGE_KINDS: Final = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
)

# A plain, lower-case identifier: what `CREATE ROLE name` makes of an unquoted name.
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


ONLY_POSTGRESQL: Final = (
    "SUPPORTDESK_DATABASE_APP_ROLE is for PostgreSQL only (SQLite has no roles); unset it"
)


class GrantError(Exception):
    """The runtime role cannot be given least privilege; the message says why."""


def role_name_problem(name: str) -> str | None:
    """Why ``name`` is not accepted as the runtime role, or None."""
    if not _ROLE_NAME.fullmatch(name):
        return (
            f"the runtime role {name!r} is not a plain role name: use 1 to 63 lower-case "
            "letters, digits and underscores, not starting with a digit"
        )
    if name == "public" or name.startswith("pg_"):
        return f"the runtime role {name!r} is reserved by PostgreSQL"
    return None


def check_role_name(name: str) -> None:
    problem = role_name_problem(name)
    if problem is not None:
        raise GrantError(problem)


@dataclass(frozen=True)
class Where:
    """The connection's own role, database and schema (where the migrations went)."""

    user: str
    database: str
    schema: str


async def check_role(conn: AsyncConnection, role: str) -> Where:
    """Refuse a role that does not exist, runs the migrations, or is a superuser."""
    if conn.dialect.name != "postgresql":
        raise GrantError(ONLY_POSTGRESQL)
    check_role_name(role)
    row = (
        await conn.execute(text("SELECT current_user, current_database(), current_schema()"))
    ).one()
    if row[2] is None:
        raise GrantError("the connection has no current schema (search_path is empty)")
    where = Where(user=row[0], database=row[1], schema=row[2])
    found = (
        await conn.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}
        )
    ).one_or_none()
    if found is None:
        raise GrantError(
            f"the runtime role {role!r} does not exist; an administrator creates it first "
            f"(CREATE ROLE {role} LOGIN PASSWORD '…'), then run `supportdesk db upgrade` again"
        )
    if role == where.user:
        raise GrantError(
            f"the runtime role {role!r} is the role running the migrations, which owns the "
            "tables; the service needs a login role of its own"
        )
    if found[0]:
        raise GrantError(f"the runtime role {role!r} is a superuser: privileges do not bind it")
    return where


async def apply_grants(conn: AsyncConnection, role: str) -> None:
    """Grant ``role`` what TABLE_PRIVILEGES lists and nothing else, then check it.

    Runs in the caller's transaction, as the owner of the tables; repeatable.
    """
    where = await check_role(conn, role)
    quote = conn.dialect.identifier_preparer.quote_identifier
    grantee, schema = quote(role), quote(where.schema)
    existing = await _tables(conn, where.schema)
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(where.database)} TO {grantee}",
        f"REVOKE ALL ON SCHEMA {schema} FROM {grantee}",
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {grantee}",
        *(
            f"GRANT {', '.join(privileges)} ON TABLE {schema}.{quote(table)} TO {grantee}"
            for table, privileges in TABLE_PRIVILEGES.items()
            # An upgrade to an older revision has not made every table yet.
            if table in existing
        ),
        f"GRANT {', '.join(SEQUENCE_PRIVILEGES)} ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
    ]
    for statement in statements:
        # Not text(): a quoted name may hold a colon, which text() would take for a bind.
        await conn.exec_driver_sql(statement)
    await _verify(conn, role, where)


async def held_table_privileges(
    conn: AsyncConnection, role: str, schema: str
) -> dict[str, set[str]]:
    """What ``role`` may do to each table of ``schema``, by whatever route (own grants,
    PUBLIC, membership, ownership)."""
    rows = await conn.execute(
        text(
            "SELECT c.relname, p.privilege FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN unnest(CAST(:kinds AS text[])) AS p(privilege) "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND has_table_privilege(:role, c.oid, p.privilege)"
        ),
        {"kinds": list(TABLE_PRIVILEGE_KINDS), "schema": schema, "role": role},
    )
    held: dict[str, set[str]] = {}
    for table, privilege in rows.all():
        held.setdefault(table, set()).add(privilege)
    return held


async def _tables(conn: AsyncConnection, schema: str) -> set[str]:
    rows = await conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
    )
    return set(rows.scalars().all())


async def _verify(conn: AsyncConnection, role: str, where: Where) -> None:
    """Privileges that come from elsewhere (PUBLIC, a role the runtime role is a member
    of, ownership) survive a REVOKE from the role: refuse to call that least privilege."""
    existing = await _tables(conn, where.schema)
    held = await held_table_privileges(conn, role, where.schema)
    extra = sorted(
        f"{privilege} on {table}"
        for table, privileges in held.items()
        for privilege in privileges - set(TABLE_PRIVILEGES.get(table, ()))
    )
    missing = sorted(
        f"{privilege} on {table}"
        for table in existing & TABLE_PRIVILEGES.keys()
        for privilege in set(TABLE_PRIVILEGES[table]) - held.get(table, set())
    )
    owned = (
        await conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
                "AND pg_has_role(:role, c.relowner, 'USAGE') "
                "ORDER BY c.relname"
            ),
            {"schema": where.schema, "role": role},
        )
    ).scalars()
    ddl = (
        await conn.execute(
            text(
                "SELECT has_schema_privilege(:role, :schema, 'CREATE'), "
                "has_database_privilege(:role, :database, 'CREATE')"
            ),
            {"role": role, "schema": where.schema, "database": where.database},
        )
    ).one()
    problems = _problems(role, where, owned, extra, missing, bool(ddl[0]), bool(ddl[1]))
    if problems:
        raise GrantError("; ".join(problems))


def _problems(
    role: str,
    where: Where,
    owned: Iterable[str],
    extra: list[str],
    missing: list[str],
    creates_in_schema: bool,
    creates_in_database: bool,
) -> list[str]:
    problems = []
    owned = list(owned)
    if owned:
        problems.append(
            f"the runtime role {role!r} owns, or is a member of the owner of, "
            f"{', '.join(owned[:5])}{' …' if len(owned) > 5 else ''}; the migration owner "
            f"must own them (REASSIGN OWNED BY {role} TO {where.user}) and the runtime "
            "role must not be a member of it"
        )
    if extra:
        problems.append(
            f"the runtime role {role!r} holds more than it is granted, through PUBLIC or "
            f"another role: {', '.join(extra[:10])}{' …' if len(extra) > 10 else ''}"
        )
    if missing:
        problems.append(f"granting failed for {', '.join(missing)}")
    if creates_in_schema:
        problems.append(
            f"the runtime role {role!r} may create objects in schema {where.schema!r} "
            f"(REVOKE CREATE ON SCHEMA {where.schema} FROM PUBLIC)"
        )
    if creates_in_database:
        problems.append(
            f"the runtime role {role!r} may create schemas in database {where.database!r}"
        )
    return problems
