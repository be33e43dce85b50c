"""Small shared pieces: ids, cursors, key hashing, role permissions, the lease heartbeat."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportdesk.config import Settings
from supportdesk.errors import InvalidInput
from supportdesk.kit.auth import (
    PERMISSIONS,
    Permission,
    Principal,
    PrincipalCache,
    Role,
    generate_key,
    hash_key,
)
from supportdesk.kit.heartbeat import heartbeat
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import decode_cursor, encode_cursor
from supportdesk.kit.spreadsheet import FORMULA_STARTS, text_cell


class TestIds:
    def test_ids_are_prefixed_and_increasing(self) -> None:
        ids = [new_id("cus") for _ in range(2000)]
        assert all(i.startswith("cus_") and len(i) == 30 for i in ids)
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


class TestCursor:
    @given(
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=80)
    )
    def test_round_trip(self, value: str) -> None:
        assert decode_cursor(encode_cursor(value)) == value

    @pytest.mark.parametrize("value", ["\x00", "a\ud800"])
    def test_cursor_with_unstorable_text_is_invalid(self, value: str) -> None:
        with pytest.raises(InvalidInput):
            decode_cursor(encode_cursor(value))

    @pytest.mark.parametrize("bad", ["", "!!!", "e30", "W10", "bm90IGpzb24"])
    def test_garbage_is_invalid_input(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            decode_cursor(bad)


class TestKeys:
    def test_generated_key_hash_matches(self) -> None:
        key = generate_key()
        assert key.secret.startswith("sdk_")
        assert key.key_hash == hashlib.sha256(key.secret.encode()).hexdigest()
        assert key.key_hash == hash_key(key.secret)
        assert key.secret.startswith(key.prefix) and len(key.prefix) < len(key.secret) // 3

    def test_every_permission_has_roles(self) -> None:
        assert set(PERMISSIONS) == set(Permission)

    def test_only_admin_manages_keys(self) -> None:
        allowed = {r for r in Role if Principal("k", r, "c").may(Permission.manage_api_keys)}
        assert allowed == {Role.admin}

    def test_customer_scope_only_for_customer_role(self) -> None:
        assert Principal("k", Role.customer, "cus_1").customer_scope == "cus_1"
        assert Principal("k", Role.agent, None).customer_scope is None


class TestPrincipalCache:
    agent = Principal(key_id="key_1", role=Role.agent, customer_id=None)

    def test_remembers_for_its_time_then_forgets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = [1000.0]
        monkeypatch.setattr("supportdesk.kit.auth.time.monotonic", lambda: now[0])
        cache = PrincipalCache()
        cache.put("h1", self.agent, ttl=2)
        assert cache.get("h1") == self.agent
        now[0] += 1.9
        assert cache.get("h1") == self.agent
        now[0] += 0.2
        assert cache.get("h1") is None

    def test_zero_time_keeps_nothing(self) -> None:
        cache = PrincipalCache()
        cache.put("h1", self.agent, ttl=0)
        assert cache.get("h1") is None

    def test_forget_drops_every_entry_of_the_key(self) -> None:
        cache = PrincipalCache()
        other = Principal(key_id="key_2", role=Role.admin, customer_id=None)
        cache.put("h1", self.agent, ttl=60)
        cache.put("h2", other, ttl=60)
        cache.forget("key_1")
        assert cache.get("h1") is None
        assert cache.get("h2") == other

    def test_stays_bounded(self) -> None:
        cache = PrincipalCache()
        for n in range(PrincipalCache.MAX_ENTRIES + 5):
            cache.put(f"h{n}", self.agent, ttl=60)
        assert len(cache._entries) <= PrincipalCache.MAX_ENTRIES


class TestRateLimitWindows:
    def test_windows_are_fixed_and_retry_after_points_at_the_next(self) -> None:
        from datetime import UTC, datetime, timedelta

        from supportdesk.kit.ratelimit import Limit

        limit = Limit(1200, timedelta(seconds=60))
        now = datetime(2026, 11, 21, 10, 0, 42, 500_000, tzinfo=UTC)
        assert limit.window_start(now) == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
        assert limit.retry_after(now) == 18
        assert limit.batch == 60
        assert Limit(3, timedelta(seconds=1)).batch == 1
        assert Limit(10**6, timedelta(seconds=60)).batch == 100
        assert not Limit(0, timedelta(seconds=60)).enabled


class TestTextCell:
    @pytest.mark.parametrize("start", ["=", "@", "+", "-", "\t", "\r"])
    def test_a_formula_start_gets_a_quote_and_keeps_the_rest(self, start: str) -> None:
        assert text_cell(start + "SUM(A1)") == "'" + start + "SUM(A1)"

    @given(st.text())
    def test_other_text_is_unchanged_and_nothing_is_lost(self, text: str) -> None:
        cell = text_cell(text)
        if text.startswith(FORMULA_STARTS):
            assert cell == "'" + text
        else:
            assert cell == text
        assert not cell.startswith(FORMULA_STARTS)


class TestHeartbeat:
    async def test_a_block_shorter_than_a_beat_starts_no_task(self) -> None:
        renewals = 0

        async def renew() -> None:
            nonlocal renewals
            renewals += 1

        before = asyncio.all_tasks()
        async with heartbeat(renew, timedelta(seconds=30), "test"):
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == before
        assert renewals == 0

    async def test_renews_every_third_of_the_lease_and_stops_with_the_block(self) -> None:
        beats: list[float] = []
        loop = asyncio.get_running_loop()

        async def renew() -> None:
            beats.append(loop.time())

        started = loop.time()
        async with heartbeat(renew, timedelta(seconds=0.3), "test"):
            async with asyncio.timeout(5):
                while len(beats) < 3:  # noqa: ASYNC110 - waiting for the beats
                    await asyncio.sleep(0.01)
        count = len(beats)
        await asyncio.sleep(0.3)
        assert len(beats) == count  # no beat after the block
        assert beats[0] - started >= 0.09
        assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(beats))

    async def test_a_failed_renewal_is_tried_again_at_the_next_beat(self) -> None:
        calls = 0

        async def renew() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise OSError("the database went away for a moment")

        async with heartbeat(renew, timedelta(seconds=0.15), "test"):
            async with asyncio.timeout(5):
                while calls < 2:  # noqa: ASYNC110 - waiting for the second beat
                    await asyncio.sleep(0.01)
        assert calls == 2

    @pytest.mark.parametrize("name", ["webhook_lease_seconds", "mail_lease_seconds"])
    def test_the_lease_settings_stay_under_a_minute(self, name: str) -> None:
        assert getattr(Settings(), name) == 30
        assert getattr(Settings(**{name: 59}), name) == 59
        for refused in (60, 0.5):
            with pytest.raises(ValueError, match=name):
                Settings(**{name: refused})
