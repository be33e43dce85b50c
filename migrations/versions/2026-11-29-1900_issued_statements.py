"""issued statements

Statements are issued explicitly (POST, or the monthly job) and frozen: ``statements``
holds the header and totals, ``statement_lines`` every line as it was issued, and
``statement_counters`` the per-year statement numbers.

``issued_statements`` goes. It only recorded which periods a GET had announced once
(any previewed period counted as issued), with no content to show; those periods are
not carried over as issued statements, so they can be issued properly now.

Revision ID: 62ee581b5574
Revises: 6f4571b28ed6
Create Date: 2026-11-29 18:42:34.749134
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import supportdesk.db

revision: str = "62ee581b5574"
down_revision: str | None = "6f4571b28ed6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "statement_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_statement_counters")),
    )
    op.create_table(
        "statements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("starts_at", supportdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", supportdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", supportdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "opening_balance", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "closing_balance", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "units_purchased", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount_purchased", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column(
            "units_used", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "units_at_list_price",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "units_covered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount_due", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.CheckConstraint("last >= first", name=op.f("ck_statements_period_ordered")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_statements_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint(
            "customer_id", "first", "last", name=op.f("uq_statements_customer_id_first_last")
        ),
        sa.UniqueConstraint("number", name=op.f("uq_statements_number")),
    )
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index("ix_statements_customer_id_id", ["customer_id", "id"], unique=False)

    op.create_table(
        "statement_lines",
        sa.Column("statement_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("at", supportdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("units", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "units_prepaid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "units_at_list_price",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "units_covered", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("partner", sa.Text(), nullable=False),
        sa.Column("supporter", sa.Text(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("paid_by", sa.String(length=30), nullable=False),
        sa.CheckConstraint(
            "kind IN ('purchase', 'debit', 'reversal', 'session')",
            name=op.f("ck_statement_lines_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
            name=op.f("fk_statement_lines_statement_id_statements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("statement_id", "position", name=op.f("pk_statement_lines")),
    )
    op.drop_table("issued_statements")


def downgrade() -> None:
    op.create_table(
        "issued_statements",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("issued_at", supportdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "first", "last", name=op.f("pk_issued_statements")),
    )
    op.drop_table("statement_lines")
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.drop_index("ix_statements_customer_id_id")

    op.drop_table("statements")
    op.drop_table("statement_counters")
