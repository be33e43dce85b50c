"""The JSON log line: one object per record, whatever the record carries."""

from __future__ import annotations

import json
import logging
import re
from datetime import date

from supportdesk.kit.observability import JsonFormatter


def _record(msg: str, fields: dict[str, object] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("supportdesk.access", logging.INFO, __file__, 1, msg, (), None)
    if fields is not None:
        record.fields = fields
    return record


class TestJsonFormatter:
    def test_line_carries_time_level_logger_message_and_fields(self) -> None:
        line = json.loads(
            JsonFormatter().format(_record("request", {"status": 201, "duration_ms": 1.25}))
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("ts"))
        assert line == {
            "level": "info",
            "logger": "supportdesk.access",
            "msg": "request",
            "status": 201,
            "duration_ms": 1.25,
        }

    def test_records_of_the_same_second_keep_their_own_milliseconds(self) -> None:
        formatter = JsonFormatter()
        first, second = _record("a"), _record("b")
        second.created, second.msecs = first.created, (first.msecs + 1) % 1000
        stamps = [json.loads(formatter.format(r))["ts"] for r in (first, second)]
        assert stamps[0][:19] == stamps[1][:19]
        assert stamps[0][20:23] == f"{int(first.msecs):03d}"
        assert stamps[1][20:23] == f"{int(second.msecs):03d}"

    def test_a_value_json_does_not_know_is_written_as_text(self) -> None:
        line = json.loads(JsonFormatter().format(_record("x", {"day": date(2026, 1, 2)})))
        assert line["day"] == "2026-01-02"

    def test_a_lone_surrogate_still_gives_a_line(self) -> None:
        text = JsonFormatter().format(_record("bad \ud800"))
        assert json.loads(text)["msg"] == "bad \ud800"
