"""Reading a remote-support tool's connection report (CSV), German or English.

The delimiter is detected, columns are found by their headers, dates may be ISO,
German (21.11.2026 14:30) or English (11/21/2026 2:30 PM), durations hh:mm(:ss),
minutes or seconds. Each row becomes a connection or an error with its line number.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from supportdesk.kit.clock import in_accepted_range
from supportdesk.sessions.schemas import MAX_SESSION_SECONDS

HEADERS: dict[str, tuple[str, ...]] = {
    "user": ("user", "benutzer", "supporter", "mitarbeiter", "username"),
    "computer": ("computer", "rechner", "device", "gerät", "geraet"),
    "partner": ("partner",),
    "start": ("start", "beginn", "anfang", "started", "startzeit", "start time", "begin"),
    "end": ("end", "ende", "ended", "endzeit", "end time"),
    "duration": ("duration", "dauer"),
    "notes": ("notes", "notizen", "note", "notiz", "comment", "kommentar", "bemerkung"),
    "billable": ("billable", "abrechenbar", "berechnen", "abrechnen"),
}
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
YES = {"1", "ja", "yes", "true", "wahr", "x", "j", "y"}
NO = {"0", "nein", "no", "false", "falsch", "n", ""}
MAX_DURATION = timedelta(seconds=MAX_SESSION_SECONDS)
"""The longest connection a row may give, as the JSON API takes it (longer ones would
also overflow PostgreSQL's integer seconds or the end instant)."""
TOO_LONG = f"a connection lasts at most {MAX_SESSION_SECONDS // 86400} days"
_DURATION = re.compile(r"^(?:(\d+):)?(\d{1,3}):(\d{2})$")


@dataclass(frozen=True)
class Connection:
    line: int
    user: str
    computer: str
    partner: str
    started_at: datetime
    duration: timedelta
    notes: str
    billable: bool

    def fingerprint(self, customer_id: str) -> str:
        """Identifies the connection across imports of the same (or an overlapping) file."""
        parts = (
            customer_id,
            self.user,
            self.computer,
            self.started_at.isoformat(),
            str(int(self.duration.total_seconds())),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class RowError:
    line: int
    msg: str


def _column(names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, raw in enumerate(names):
        name = raw.strip().strip("\ufeff").lower()
        for field, aliases in HEADERS.items():
            if name in aliases and field not in found:
                found[field] = index
    return found


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    value = text.strip().removesuffix("Uhr").strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for pattern in DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"unreadable date {value!r}") from None
    instant = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    # As the JSON API does: a date of year 1 or 9999 would overflow in the desk's zone.
    try:
        in_accepted_range(instant)
    except ValueError:
        raise ValueError(f"the date {value!r} is not in the years 1900 to 2999") from None
    return instant


def parse_duration(text: str) -> timedelta:
    try:
        return _duration(text)
    except OverflowError as exc:  # more minutes than a timedelta holds
        raise ValueError(TOO_LONG) from exc


def _duration(text: str) -> timedelta:
    value = text.strip().lower().replace(",", ".")
    match = _DURATION.match(value)
    if match:
        hours, minutes, seconds = match.groups()
        if hours is None:  # two parts are minutes and seconds: 12:22 is 12 min 22 s
            return timedelta(minutes=int(minutes), seconds=int(seconds))
        return timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds))
    for suffix, unit in (("min", 60), ("m", 60), ("s", 1), ("sec", 1), ("sek", 1)):
        if value.endswith(suffix) and value[: -len(suffix)].strip().replace(".", "", 1).isdigit():
            return timedelta(seconds=float(value[: -len(suffix)].strip()) * unit)
    if value.replace(".", "", 1).isdigit():
        return timedelta(minutes=float(value))  # a bare number is minutes, as reports show
    raise ValueError(f"unreadable duration {text!r}")


def _billable(text: str | None) -> bool:
    if text is None:
        return True
    value = text.strip().lower()
    if value in YES:
        return True
    if value in NO:
        return False
    raise ValueError(f"billable must be yes/no (ja/nein), not {text!r}")


def read_report(lines: Iterable[str], zone: ZoneInfo) -> Iterator[Connection | RowError]:
    """Connections and row errors of a report, in file order, with file line numbers."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        yield RowError(1, "the file is empty")
        return
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first, delimiters=";,\t|")
    except csv.Error:
        dialect = csv.excel
    header = next(csv.reader([first], dialect))
    columns = _column(header)
    if "start" not in columns or not ({"end", "duration"} & columns.keys()):
        yield RowError(1, "the header needs start/Beginn and end/Ende or duration/Dauer")
        return
    reader = csv.reader(iterator, dialect)
    for row in reader:
        line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue

        def cell(field: str, row: list[str] = row) -> str | None:
            index = columns.get(field)
            return row[index] if index is not None and index < len(row) else None

        try:
            started = parse_instant(cell("start") or "", zone)
            end_text, duration_text = cell("end"), cell("duration")
            if duration_text and duration_text.strip():
                duration = parse_duration(duration_text)
            elif end_text and end_text.strip():
                duration = parse_instant(end_text, zone) - started
            else:
                raise ValueError("neither end nor duration given")
            if duration < timedelta(0):
                raise ValueError("the connection ends before it starts")
            if duration > MAX_DURATION:
                raise ValueError(TOO_LONG)
            yield Connection(
                line=line,
                user=(cell("user") or "").strip(),
                computer=(cell("computer") or "").strip(),
                partner=(cell("partner") or "").strip(),
                started_at=started,
                duration=duration,
                notes=(cell("notes") or "").strip(),
                billable=_billable(cell("billable")),
            )
        except ValueError as exc:
            yield RowError(line, str(exc))
