from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.contracts.repository import ContractRepository
from supportdesk.customers.repository import ContactRepository, CustomerRepository
from supportdesk.customers.schemas import ContactCreate, CustomerCreate, CustomerUpdate
from supportdesk.domain.groups import ContractPeriod, SupportGroup, support_group
from supportdesk.errors import NotFound
from supportdesk.kit.clock import utcnow
from supportdesk.kit.etag import require_match
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Contact, Customer

_EXTERNAL_REF_TAKEN = "Another customer already has this external_ref."


@dataclass(frozen=True)
class CustomerStanding:
    """A customer with the support group it stands in right now."""

    customer: Customer
    support_group: SupportGroup
    warning_levels: tuple[int, ...]


def encode_levels(levels: list[int] | None) -> str | None:
    return None if levels is None else ",".join(str(n) for n in sorted(set(levels), reverse=True))


def warning_levels_of(customer: Customer, rules: BusinessRules) -> tuple[int, ...]:
    """The customer's own low-balance levels, else the desk's default levels."""
    return stored_warning_levels(customer.unit_warning_levels, rules)


def stored_warning_levels(stored: str | None, rules: BusinessRules) -> tuple[int, ...]:
    """The levels as a customer row stores them (comma-separated; NULL: the desk's)."""
    if stored is None:
        return rules.warning_levels
    return tuple(int(level) for level in stored.split(",") if level)


def _group(
    contracts: Iterable[tuple[date, date | None]], unit_balance: int, today: date
) -> SupportGroup:
    return support_group([ContractPeriod(a, b) for a, b in contracts], unit_balance, today)


class StandingService:
    """Which support group customers stand in now: contracts valid today, then balance."""

    def __init__(self, session: AsyncSession, rules: BusinessRules) -> None:
        self.rules = rules
        self.contracts = ContractRepository(session)
        self.customers = CustomerRepository(session)

    async def groups_of(
        self, customers: Iterable[Customer], *, on: date | None = None
    ) -> dict[str, SupportGroup]:
        """The groups now; with ``on``, contracts are judged on that day (the balance is
        always today's)."""
        customers = list(customers)
        contracts = await self.contracts.list_for_customers(c.id for c in customers)
        today = on or self.rules.calendar.local_date(utcnow())
        return {
            c.id: _group(
                [(k.starts_on, k.ends_on) for k in contracts.get(c.id, [])], c.unit_balance, today
            )
            for c in customers
        }

    async def group_of(self, customer: Customer, *, on: date | None = None) -> SupportGroup:
        return (await self.groups_of([customer], on=on))[customer.id]


class CustomerService:
    def __init__(
        self, session: AsyncSession, rules: BusinessRules, *, scope: str | None = None
    ) -> None:
        self.rules = rules
        self.standing = StandingService(session, rules)
        self.customers = CustomerRepository(session, scope)
        self.contacts = ContactRepository(session, scope)

    async def _standings(self, customers: list[Customer]) -> list[CustomerStanding]:
        groups = await self.standing.groups_of(customers)
        return [
            CustomerStanding(c, groups[c.id], warning_levels_of(c, self.rules)) for c in customers
        ]

    async def _standing(self, customer: Customer) -> CustomerStanding:
        return (await self._standings([customer]))[0]

    async def _require(self, customer_id: str) -> Customer:
        customer = await self.customers.get_by_id(customer_id)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        return customer

    async def register_customer(self, data: CustomerCreate) -> CustomerStanding:
        now = utcnow()
        customer = Customer(
            id=new_id("cus"),
            name=data.name,
            external_ref=data.external_ref,
            unit_balance=0,
            unit_warning_levels=encode_levels(data.unit_warning_levels),
            language=data.language.value,
            notification_opt_outs=sorted({kind.value for kind in data.notification_opt_outs}),
            created_at=now,
            updated_at=now,
        )
        await self.customers.add(customer, conflict=_EXTERNAL_REF_TAKEN)
        return await self._standing(customer)

    async def get_customer(self, customer_id: str) -> CustomerStanding:
        return await self._standing(await self._require(customer_id))

    async def list_customers(
        self, params: PageParams, *, external_ref: str | None = None
    ) -> tuple[list[CustomerStanding], str | None]:
        rows, next_cursor = await self.customers.list_page(params, external_ref=external_ref)
        return await self._standings(rows), next_cursor

    async def update_customer(
        self, customer_id: str, data: CustomerUpdate, *, if_match: str | None = None
    ) -> CustomerStanding:
        customer = await self.customers.get_by_id(customer_id, for_update=True)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        require_match(if_match, customer.id, customer.updated_at)
        changes = data.model_dump(exclude_unset=True)
        if "unit_warning_levels" in changes:
            changes["unit_warning_levels"] = encode_levels(changes["unit_warning_levels"])
        if "notification_opt_outs" in changes:
            changes["notification_opt_outs"] = sorted(
                {str(kind) for kind in changes["notification_opt_outs"]}
            )
        if "language" in changes:
            changes["language"] = str(changes["language"])
        contact_id = changes.get("billing_contact_id")
        if contact_id is not None and (
            await self.contacts.get_of_customer(customer.id, contact_id) is None
        ):
            # As for a ticket's contact: a contact of another customer does not exist here.
            raise NotFound.of("contact", contact_id)
        for field, value in changes.items():
            setattr(customer, field, value)
        if changes:
            customer.updated_at = utcnow()
            await self.customers.flush(_EXTERNAL_REF_TAKEN)
        return await self._standing(customer)

    async def add_contact(self, customer_id: str, data: ContactCreate) -> Contact:
        await self._require(customer_id)
        now = utcnow()
        contact = Contact(
            id=new_id("con"),
            customer_id=customer_id,
            name=data.name,
            email=data.email,
            phone=data.phone,
            created_at=now,
            updated_at=now,
        )
        return await self.contacts.add(contact)

    async def list_contacts(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[Contact], str | None]:
        await self._require(customer_id)
        return await self.contacts.list_for_customer(customer_id, params)

    async def get_contact(self, customer_id: str, contact_id: str) -> Contact:
        contact = await self.contacts.get_of_customer(customer_id, contact_id)
        if contact is None:
            raise NotFound.of("contact", contact_id)
        return contact
