from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository, table_of
from supportdesk.models import Customer, LedgerEntry

CUSTOMERS = table_of(Customer)
ENTRY_COLUMNS = tuple(column.key for column in table_of(LedgerEntry).columns)


class Applied(NamedTuple):
    """What one balance update did: the balance it left, its signed change, and the
    customer's own warning levels (as stored), read by the same statement."""

    balance_after: int
    change: int
    warning_levels: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntryRow:
    """A ledger entry as written by Core: the table's columns, in their order."""

    id: str
    customer_id: str
    kind: str
    units: int
    change: int
    units_debited: int
    units_billed_at_list_price: int
    unit_price: Decimal | None
    amount: Decimal | None
    list_price_amount: Decimal | None
    currency: str
    reverses_id: str | None
    reference: str | None
    cause_type: str
    cause_id: str | None
    balance_after: int
    recorded_at: datetime
    effective_at: datetime
    created_by: str | None

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ENTRY_COLUMNS}


def _balance_update(new_balance: ColumnElement[int], change: ColumnElement[int]) -> Update:
    # Plain Core on the table, built once: both SET expressions read the row as it was
    # before this statement; the customer's scope is one more bound parameter.
    return (
        update(CUSTOMERS)
        .where(
            CUSTOMERS.c.id == bindparam("customer_id"),
            CUSTOMERS.c.id == func.coalesce(bindparam("scope", type_=String), CUSTOMERS.c.id),
        )
        .values(unit_balance=new_balance, last_balance_change=change)
        .returning(
            CUSTOMERS.c.unit_balance,
            CUSTOMERS.c.last_balance_change,
            CUSTOMERS.c.unit_warning_levels,
        )
    )


_UNITS: BindParameter[int] = bindparam("units", type_=Integer)
_TAKEN = case((CUSTOMERS.c.unit_balance < _UNITS, CUSTOMERS.c.unit_balance), else_=_UNITS)
TAKE_UNITS = _balance_update(CUSTOMERS.c.unit_balance - _TAKEN, -_TAKEN)
ADD_UNITS = _balance_update(CUSTOMERS.c.unit_balance + _UNITS, _UNITS)


class LedgerRepository(Repository):
    """Ledger entries and the balance kept beside the customer.

    Every balance change is one conditional ``UPDATE … RETURNING`` on the customer row:
    the row lock it takes serialises concurrent changes, the ``CHECK (unit_balance >= 0)``
    refuses anything below zero, and no value is read first and written back later.
    """

    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    async def _apply(self, statement: Update, customer_id: str, units: int) -> Applied | None:
        params = {"customer_id": customer_id, "scope": self.scope, "units": units}
        rows = await self.fetch(statement, params)
        return Applied(int(rows[0][0]), int(rows[0][1]), rows[0][2]) if rows else None

    async def take(self, customer_id: str, units: int) -> Applied | None:
        """Debit up to ``units``, never below zero, in one statement; None: no such
        customer (in the caller's scope)."""
        return await self._apply(TAKE_UNITS, customer_id, units)

    async def credit(self, customer_id: str, units: int) -> Applied | None:
        """Credit ``units`` in one statement; None: no such customer (in scope)."""
        return await self._apply(ADD_UNITS, customer_id, units)

    def _entries(self, customer_id: str) -> Select[LedgerEntry]:
        return select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)

    async def add_units(self, customer_id: str, units: int) -> tuple[int, int] | None:
        """Credit ``units``: (balance after, signed change)."""
        return await self._change(customer_id, Customer.unit_balance + units, literal(units))

    async def remove_units(self, customer_id: str, units: int) -> tuple[int, int] | None:
        """Take back exactly ``units`` if the balance holds them; else None, nothing changed."""
        return await self._change(
            customer_id,
            Customer.unit_balance - units,
            literal(-units),
            Customer.unit_balance >= units,
        )

    async def _change(
        self,
        customer_id: str,
        new_balance: ColumnElement[int],
        change: ColumnElement[int],
        *conditions: ColumnElement[bool],
    ) -> tuple[int, int] | None:
        # Both SET expressions read the row as it was before this statement.
        stmt = (
            update(Customer)
            .where(Customer.id == customer_id, *conditions)
            .values(unit_balance=new_balance, last_balance_change=change)
            .returning(Customer.unit_balance, Customer.last_balance_change)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (int(row[0]), int(row[1]))

    def add_entry(self, entry: LedgerEntry) -> None:
        """Stage an entry; it is written with the transaction's next flush or commit."""
        self.session.add(entry)

    async def balance(self, customer_id: str) -> int | None:
        stmt = select(Customer.unit_balance).where(Customer.id == customer_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def balance_as_of(self, customer_id: str, instant: datetime) -> int:
        stmt = select(func.coalesce(func.sum(LedgerEntry.change), 0)).where(
            LedgerEntry.customer_id == customer_id, LedgerEntry.effective_at <= instant
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def sum_of_changes(self, customer_id: str) -> int:
        stmt = select(func.coalesce(func.sum(LedgerEntry.change), 0)).where(
            LedgerEntry.customer_id == customer_id
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_entry(self, customer_id: str, entry_id: str) -> LedgerEntry | None:
        stmt = self._entries(customer_id).where(LedgerEntry.id == entry_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_reversal_of(self, entry_id: str) -> LedgerEntry | None:
        stmt = select(LedgerEntry).where(LedgerEntry.reverses_id == entry_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_for_customer(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[LedgerEntry], str | None]:
        """Newest first."""
        return await fetch_page(
            self.session, self._entries(customer_id), LedgerEntry.id, params, descending=True
        )
