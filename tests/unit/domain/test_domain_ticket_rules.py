"""Category rules: dongle exchange, change-request escalation, installation appointments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from supportdesk.domain.calendar import installation_calendar
from supportdesk.domain.errors import AppointmentsMissing, ConceptMissing, DongleNotReturned
from supportdesk.domain.tickets import (
    TicketCategory,
    check_appointments,
    check_closable,
    check_escalation,
)

HOURS = installation_calendar()
# Tuesday 2026-11-24: 09:00-11:00 Berlin is inside 07:00-18:00; 19:00-21:00 is not.
INSIDE = (datetime(2026, 11, 24, 8, 0, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
EVENING = (datetime(2026, 11, 24, 18, 0, tzinfo=UTC), datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
SATURDAY = (datetime(2026, 11, 28, 9, 0, tzinfo=UTC), datetime(2026, 11, 28, 11, 0, tzinfo=UTC))


class TestDongleExchange:
    def test_cannot_close_before_the_dongle_is_back(self) -> None:
        with pytest.raises(DongleNotReturned):
            check_closable(TicketCategory.HARDWARE_EXCHANGE, dongle_received=False)

    def test_closes_once_back_and_other_categories_always(self) -> None:
        check_closable(TicketCategory.HARDWARE_EXCHANGE, dongle_received=True)
        check_closable(TicketCategory.BUG_REPORT, dongle_received=False)


class TestChangeRequestEscalation:
    @pytest.mark.parametrize(
        ("concept", "concept_en"), [(None, None), ("Idee", None), ("", "x"), ("Idee", "  ")]
    )
    def test_needs_concept_and_translation(
        self, concept: str | None, concept_en: str | None
    ) -> None:
        with pytest.raises(ConceptMissing):
            check_escalation(TicketCategory.CHANGE_REQUEST, concept, concept_en)

    def test_complete_change_request_and_other_categories_pass(self) -> None:
        check_escalation(TicketCategory.CHANGE_REQUEST, "Idee", "Idea")
        check_escalation(TicketCategory.BUG_REPORT, None, None)


class TestInstallationAppointments:
    def test_inside_hours_one_appointment_is_enough(self) -> None:
        check_appointments(TicketCategory.INSTALLATION, [INSIDE], HOURS)

    @pytest.mark.parametrize("outside", [EVENING, SATURDAY])
    def test_outside_hours_needs_two(self, outside: tuple[datetime, datetime]) -> None:
        with pytest.raises(AppointmentsMissing):
            check_appointments(TicketCategory.INSTALLATION, [outside], HOURS)
        check_appointments(TicketCategory.INSTALLATION, [outside, SATURDAY], HOURS)

    def test_no_appointments_yet_and_other_categories_pass(self) -> None:
        check_appointments(TicketCategory.INSTALLATION, [], HOURS)
        check_appointments(TicketCategory.BUG_REPORT, [EVENING], HOURS)
