from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, case, func, literal, select, update

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Customer, LedgerEntry


class LedgerRepository(Repository):
    """Ledger entries and the balance kept beside the customer.

    Every balance change is one conditional ``UPDATE … RETURNING`` on the customer row:
    the row lock it takes serialises concurrent changes, the ``CHECK (unit_balance >= 0)``
    refuses anything below zero, and no value is read first and written back later.
    """

    def _entries(self, customer_id: str) -> Select[LedgerEntry]:
        return select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)

    async def take_units(self, customer_id: str, units: int) -> tuple[int, int] | None:
        """Debit up to ``units``, never below zero: (balance after, signed change)."""
        taken = case((Customer.unit_balance < units, Customer.unit_balance), else_=literal(units))
        return await self._change(customer_id, Customer.unit_balance - taken, -taken)

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
