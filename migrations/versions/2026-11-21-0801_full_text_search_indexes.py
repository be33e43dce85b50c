"""full-text search indexes

GIN indexes for ?q= on PostgreSQL, over the same expressions the search uses
(SQLite searches without an index).

Revision ID: 1d765c16b328
Revises: dbe8cb5b6ee0
Create Date: 2026-11-21 08:01:50.510202
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1d765c16b328"
down_revision: str | None = "dbe8cb5b6ee0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TICKET_TEXT = (
    "coalesce(subject, '') || ' ' || coalesce(description, '') || ' ' || "
    "coalesce(steps_to_reproduce, '') || ' ' || coalesce(env_os, '') || ' ' || "
    "coalesce(env_host_application, '') || ' ' || coalesce(env_host_version, '') || ' ' || "
    "coalesce(env_database_server, '')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_tickets_search ON tickets "
        f"USING gin (to_tsvector('simple', {TICKET_TEXT}))"
    )
    op.execute(
        "CREATE INDEX ix_ticket_comments_search ON ticket_comments "
        "USING gin (to_tsvector('simple', body))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_ticket_comments_search")
    op.execute("DROP INDEX ix_tickets_search")
