from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.contracts.repository import ContractRepository
from supportdesk.contracts.schemas import ContractCreate, ContractUpdate
from supportdesk.customers.repository import CustomerRepository
from supportdesk.domain.errors import InvalidContractPeriod
from supportdesk.domain.groups import ContractPeriod
from supportdesk.errors import NotFound
from supportdesk.events.service import EventRecorder
from supportdesk.kit.clock import utcnow
from supportdesk.kit.etag import require_match
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Contract


def period_of(contract: Contract) -> ContractPeriod:
    return ContractPeriod(contract.starts_on, contract.ends_on)


@dataclass(frozen=True)
class ContractView:
    contract: Contract
    active: bool


class ContractService:
    def __init__(
        self,
        session: AsyncSession,
        rules: BusinessRules,
        *,
        scope: str | None = None,
    ) -> None:
        self.session = session
        self.rules = rules
        self.contracts = ContractRepository(session, scope)
        self.customers = CustomerRepository(session, scope)
        self.events = EventRecorder(session)

    def _view(self, contract: Contract) -> ContractView:
        today = self.rules.calendar.local_date(utcnow())
        return ContractView(contract, period_of(contract).is_valid_on(today))

    async def _changed(self, contract: Contract) -> ContractView:
        # Imported here: tickets import contracts for the customers' standing.
        from supportdesk.contracts.schemas import ContractRead
        from supportdesk.tickets.service import TicketService

        view = self._view(contract)
        data = ContractRead.model_validate(
            {
                **{k: getattr(contract, k) for k in ContractRead.model_fields if k != "active"},
                "active": view.active,
            }
        )
        self.events.record(
            "contract.changed",
            resource_type="contract",
            resource_id=contract.id,
            customer_id=contract.customer_id,
            data=data.model_dump(mode="json"),
        )
        # A contract that starts or ends moves the customer's waiting tickets.
        await TicketService(self.session, self.rules).refresh_customer(contract.customer_id)
        return view

    async def add_contract(self, data: ContractCreate) -> ContractView:
        if await self.customers.get_by_id(data.customer_id) is None:
            raise NotFound.of("customer", data.customer_id)
        now = utcnow()
        contract = Contract(
            id=new_id("ctr"),
            customer_id=data.customer_id,
            kind=data.kind,
            starts_on=data.starts_on,
            ends_on=data.ends_on,
            created_at=now,
            updated_at=now,
        )
        await self.contracts.add(contract)
        return await self._changed(contract)

    async def get_contract(self, contract_id: str) -> ContractView:
        contract = await self.contracts.get_by_id(contract_id)
        if contract is None:
            raise NotFound.of("contract", contract_id)
        return self._view(contract)

    async def list_contracts(
        self, params: PageParams, *, customer_id: str | None = None
    ) -> tuple[list[ContractView], str | None]:
        if customer_id is not None and await self.customers.get_by_id(customer_id) is None:
            raise NotFound.of("customer", customer_id)
        rows, next_cursor = await self.contracts.list_page(params, customer_id=customer_id)
        return [self._view(c) for c in rows], next_cursor

    async def change_contract(
        self, contract_id: str, data: ContractUpdate, *, if_match: str | None = None
    ) -> ContractView:
        contract = await self.contracts.get_by_id(contract_id, for_update=True)
        if contract is None:
            raise NotFound.of("contract", contract_id)
        require_match(if_match, contract.id, contract.updated_at)
        changes = data.model_dump(exclude_unset=True)
        starts_on = changes.get("starts_on", contract.starts_on)
        ends_on = changes.get("ends_on", contract.ends_on)
        if ends_on is not None and ends_on < starts_on:
            raise InvalidContractPeriod("ends_on cannot be before starts_on")
        if not changes:
            return self._view(contract)
        contract.starts_on, contract.ends_on = starts_on, ends_on
        contract.updated_at = utcnow()
        await self.contracts.flush()
        return await self._changed(contract)
