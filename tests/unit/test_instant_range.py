"""The range of instants the API takes (issue 14 item 7): outside it, a clear refusal
instead of an OverflowError in a time-zone conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from supportdesk.kit.clock import END_OF_INSTANTS, FIRST_INSTANT, in_accepted_range
from supportdesk.kit.schemas import Instant
from supportdesk.sessions.report import Connection, RowError, read_report

pytestmark = pytest.mark.security
BERLIN = ZoneInfo("Europe/Berlin")


class Body(BaseModel):
    at: Instant


class TestAcceptedRange:
    @pytest.mark.parametrize(
        "text",
        [
            "9999-12-31T23:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "1899-12-31T23:59:59.999999Z",
            "3000-01-01T00:00:00Z",
            "2999-12-31T23:30:00-01:00",
        ],
    )
    def test_instants_outside_1900_to_2999_are_refused(self, text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            Body.model_validate({"at": text})
        (error,) = caught.value.errors()
        assert error["loc"] == ("at",)
        assert "1900 to 2999" in error["msg"]

    @pytest.mark.parametrize(
        ("text", "utc"),
        [
            ("1900-01-01T00:00:00Z", FIRST_INSTANT),
            ("1900-01-01T01:00:00+01:00", FIRST_INSTANT),
            ("2999-12-31T23:59:59.999999Z", END_OF_INSTANTS - timedelta(microseconds=1)),
            ("2026-11-20T09:22:00+01:00", datetime(2026, 11, 20, 8, 22, tzinfo=UTC)),
        ],
    )
    def test_instants_inside_are_taken_in_utc(self, text: str, utc: datetime) -> None:
        at = Body.model_validate({"at": text}).at
        assert at == utc
        assert at.tzinfo is UTC

    def test_the_check_converts_and_refuses_overflow(self) -> None:
        assert in_accepted_range(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == (
            datetime(2025, 12, 31, 22, tzinfo=UTC)
        )
        with pytest.raises(ValueError, match="1900 to 2999"):
            in_accepted_range(datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))))


HEADER = "User,Computer,Start,End,Duration,Notes,Billable\n"


def rows(*lines: str) -> list[Connection | RowError]:
    return list(read_report((HEADER + "".join(lines)).splitlines(keepends=True), BERLIN))


class TestReportRows:
    @pytest.mark.parametrize(
        "start",
        [
            "9999-12-31 23:00",
            "0001-01-01 00:00",
            "31.12.9999 23:30",
            "9999-12-31T23:00:00Z",
            "0001-01-01T00:00:00+05:00",
            "1899-12-31 23:59",
            "12/31/9999 11:30 PM",
        ],
    )
    def test_a_start_out_of_range_is_a_bad_row(self, start: str) -> None:
        (row,) = rows(f"Kim,PC,{start},,00:10:00,x,yes\n")
        assert isinstance(row, RowError)
        assert row.line == 2
        assert "1900 to 2999" in row.msg

    def test_an_end_out_of_range_is_a_bad_row(self) -> None:
        (row,) = rows("Kim,PC,2026-01-01 10:00,9999-12-31 23:00,,x,yes\n")
        assert isinstance(row, RowError)
        assert "1900 to 2999" in row.msg

    @pytest.mark.parametrize(
        "row_text",
        [
            "Kim,PC,2026-01-01 10:00,,99999999999999999999,x,yes\n",  # minutes past timedelta
            "Kim,PC,2026-01-01 10:00,,99999999,x,yes\n",  # 190 years: PostgreSQL's integer
            "Kim,PC,2026-01-01 10:00,,10081 min,x,yes\n",
            "Kim,PC,2026-01-01 10:00,2026-02-01 10:00,,x,yes\n",
        ],
    )
    def test_a_connection_longer_than_seven_days_is_a_bad_row(self, row_text: str) -> None:
        (row,) = rows(row_text)
        assert isinstance(row, RowError)
        assert row.msg == "a connection lasts at most 7 days"

    def test_good_rows_around_bad_ones_are_kept(self) -> None:
        found = rows(
            "Kim,PC,2026-01-01 10:00,,10080 min,x,yes\n",
            "Kim,PC,0001-01-01 00:00,,00:10:00,x,yes\n",
            "Kim,PC,2999-12-31 23:00,,00:10:00,x,yes\n",
        )
        assert [type(row).__name__ for row in found] == ["Connection", "RowError", "Connection"]
        assert [row.line for row in found] == [2, 3, 4]
