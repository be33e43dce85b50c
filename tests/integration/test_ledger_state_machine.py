"""A hypothesis state machine drives the ledger's HTTP API against a simple model.

Purchases, debits, reversals (also of entries reversed already, and of reversals),
same-key retries and different-body retries. After every step: the balance equals the
model's, it is never negative, it equals the sum of the entries, and each idempotency
key had exactly one effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from conftest import live_admin_headers, live_client

T = TypeVar("T")


@dataclass
class ModelEntry:
    id: str
    kind: str
    change: int
    reversed: bool = False


class LedgerMachine(RuleBasedStateMachine):
    """Set up per test by ``run``: ``loop``, ``http`` and ``admin`` are class attributes."""

    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient
    admin: dict[str, str]

    entries = Bundle("entries")
    keys = Bundle("keys")

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _post(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = dict(self.admin)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self._run(self.http.post(self.url, json=body, headers=headers))

    @initialize()
    def open_account(self) -> None:
        response = self._run(
            self.http.post("/api/v1/customers", json={"name": "Model"}, headers=self.admin)
        )
        assert response.status_code == 201
        self.customer_id = response.json()["id"]
        self.url = f"/api/v1/customers/{self.customer_id}/ledger/entries"
        self.balance = 0
        self.model: dict[str, ModelEntry] = {}
        self.answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.counter = 0

    def _apply(self, response: httpx.Response) -> ModelEntry:
        assert response.status_code == 201, response.text
        body = response.json()
        entry = ModelEntry(body["id"], body["kind"], body["change"])
        self.model[entry.id] = entry
        self.balance += entry.change
        assert body["balance_after"] == self.balance
        return entry

    def _key(self) -> str:
        self.counter += 1
        return f"{self.customer_id}-{self.counter}"

    @rule(target=entries, units=st.integers(1, 60))
    def purchase(self, units: int) -> str:
        entry = self._apply(self._post({"kind": "purchase", "units": units}, self._key()))
        assert entry.change == units
        return entry.id

    @rule(target=entries, units=st.integers(1, 40))
    def debit(self, units: int) -> str:
        expected = min(units, self.balance)
        response = self._post({"kind": "debit", "units": units})
        entry = self._apply(response)
        assert -entry.change == expected == response.json()["units_debited"]
        assert response.json()["units_billed_at_list_price"] == units - expected
        return entry.id

    @rule(target=keys, units=st.integers(1, 40))
    def keyed_debit(self, units: int) -> str:
        key = self._key()
        body = {"kind": "debit", "units": units}
        response = self._post(body, key)
        self._apply(response)
        self.answers[key] = (body, response.json())
        return key

    @rule(target=entries, entry_id=entries)
    def reverse(self, entry_id: str) -> str:
        target = self.model[entry_id]
        response = self._post({"kind": "reversal", "reverses": entry_id})
        refused = target.reversed or target.kind == "reversal" or self.balance - target.change < 0
        if refused:
            assert response.status_code == 409, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            return entry_id
        entry = self._apply(response)
        assert entry.change == -target.change
        target.reversed = True
        return entry.id

    @rule(key=keys)
    def retry_same(self, key: str) -> None:
        body, first = self.answers[key]
        response = self._post(body, key)
        assert response.status_code == 201
        assert response.headers["idempotent-replayed"] == "true"
        assert response.json() == first

    @rule(key=consumes(keys))
    def retry_other_body(self, key: str) -> None:
        body, _ = self.answers[key]
        other = {**body, "units": body["units"] + 1}
        response = self._post(other, key)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")

    @invariant()
    def balance_matches_the_model(self) -> None:
        ledger = self._run(
            self.http.get(f"/api/v1/customers/{self.customer_id}/ledger", headers=self.admin)
        ).json()
        assert ledger["balance"] == self.balance
        assert ledger["balance"] >= 0
        total = 0
        cursor = None
        count = 0
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = self._run(self.http.get(self.url, params=params, headers=self.admin)).json()
            total += sum(item["change"] for item in page["items"])
            count += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert total == self.balance
        # One entry per effect: retries added nothing.
        assert count == len(self.model)


def test_ledger_matches_its_model(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        admin = loop.run_until_complete(live_admin_headers(database_url))
        client_context = live_client(database_url)
        http = loop.run_until_complete(client_context.__aenter__())
        try:
            LedgerMachine.loop, LedgerMachine.http, LedgerMachine.admin = loop, http, admin
            run_state_machine_as_test(
                LedgerMachine,
                settings=settings(
                    max_examples=25,
                    stateful_step_count=30,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            loop.run_until_complete(client_context.__aexit__(None, None, None))
    finally:
        loop.close()
