"""The view of a ticket (tickets.views): the remembered due times are the ones the domain
core computes, whatever the group, severity, arrival and pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.config import Settings, build_rules
from supportdesk.domain.groups import Severity, SupportGroup
from supportdesk.domain.sla import first_response_due, sla_state
from supportdesk.tickets.repository import TicketRecord
from supportdesk.tickets.views import derive

RULES = build_rules(Settings())
START = datetime(2026, 1, 1, tzinfo=UTC)


def _record(
    received_at: datetime, severity: Severity, paused_since: datetime | None
) -> TicketRecord:
    return TicketRecord(
        id="tkt_1",
        customer_id="cus_1",
        contact_id=None,
        category="bug_report",
        severity=severity.value,
        status="awaiting_customer" if paused_since else "open",
        subject="s",
        description="d",
        steps_to_reproduce=None,
        product=None,
        addon_version=None,
        env_os=None,
        env_host_application=None,
        env_host_version=None,
        env_database_server=None,
        env_extra={},
        received_at=received_at,
        first_response_at=None,
        next_business_window=None,
        concept=None,
        concept_en=None,
        proposed_appointments=[],
        dongle_received_at=None,
        assignee_key_id=None,
        updated_at=received_at,
        has_image_screenshot=False,
        has_database_backup=False,
        paused_since=paused_since,
    )


minutes = st.integers(min_value=0, max_value=60 * 24 * 60)


class TestDerive:
    @settings(max_examples=500, deadline=None)
    @given(
        arrival=minutes,
        group=st.sampled_from(SupportGroup),
        severity=st.sampled_from(Severity),
        pause=st.none() | st.tuples(minutes, st.integers(min_value=0, max_value=60 * 72)),
        paused=st.booleans(),
        later=minutes,
    )
    def test_remembered_due_times_are_the_cores(
        self,
        arrival: int,
        group: SupportGroup,
        severity: Severity,
        pause: tuple[int, int] | None,
        paused: bool,
        later: int,
    ) -> None:
        received_at = START + timedelta(minutes=arrival)
        pauses = []
        if pause is not None:
            begins = received_at + timedelta(minutes=pause[0])
            pauses = [(begins, begins + timedelta(minutes=pause[1]))]
        paused_since = received_at + timedelta(minutes=later // 2) if paused else None
        now = received_at + timedelta(minutes=later)
        record = _record(received_at, severity, paused_since)
        spans = list(pauses)
        if paused_since is not None:
            spans.append((paused_since, max(now, paused_since)))
        due = first_response_due(
            received_at, group, severity, RULES.calendar, RULES.sla_targets, spans
        )
        state = sla_state(
            now,
            received_at,
            due,
            paused_since is not None,
            RULES.calendar,
            spans,
            RULES.at_risk_ratio,
        )
        for _ in range(2):  # the second time from memory, unless a pause runs
            view = derive(record, group, None, pauses, RULES, now)
            assert view.first_response_due == due
            assert view.sla_state == state
            assert view.support_group == group
