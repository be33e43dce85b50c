from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Contact, Customer


class CustomerRepository(Repository):
    """Customers as the caller may see them.

    ``scope`` is the customer a customer-bound key is tied to: every read starts from a
    statement restricted to it, so another customer's id behaves exactly like an
    unknown one.
    """

    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    def _base(self) -> Select[Customer]:
        stmt = select(Customer)
        if self.scope is not None:
            stmt = stmt.where(Customer.id == self.scope)
        return stmt

    async def get_by_id(self, customer_id: str, *, for_update: bool = False) -> Customer | None:
        stmt = self._base().where(Customer.id == customer_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_by_external_ref(self, external_ref: str) -> Customer | None:
        stmt = self._base().where(Customer.external_ref == external_ref)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_page(
        self, params: PageParams, *, external_ref: str | None = None
    ) -> tuple[list[Customer], str | None]:
        stmt = self._base()
        if external_ref is not None:
            stmt = stmt.where(Customer.external_ref == external_ref)
        return await fetch_page(self.session, stmt, Customer.id, params)


class ContactRepository(Repository):
    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    def _base(self) -> Select[Contact]:
        stmt = select(Contact)
        if self.scope is not None:
            stmt = stmt.where(Contact.customer_id == self.scope)
        return stmt

    async def get_of_customer(self, customer_id: str, contact_id: str) -> Contact | None:
        """The contact, if it exists and belongs to this customer."""
        stmt = self._base().where(Contact.id == contact_id, Contact.customer_id == customer_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_for_customer(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[Contact], str | None]:
        stmt = self._base().where(Contact.customer_id == customer_id)
        return await fetch_page(self.session, stmt, Contact.id, params)
