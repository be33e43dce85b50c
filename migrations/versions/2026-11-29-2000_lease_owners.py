"""lease owners

Webhook URL leases, webhook jobs and notifications name the dispatcher or mailer that
holds them (a random id per process). Only the owner renews a lease (its heartbeat) or
writes back a result; a lease whose owner stopped renewing runs out and is taken over.
Rows held when this runs have no owner: their leases simply run out.

Revision ID: 3b7d1c9e2f40
Revises: 62ee581b5574
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b7d1c9e2f40"
down_revision: str | None = "62ee581b5574"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("webhook_url_leases", "webhook_jobs", "notifications")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("owner")
