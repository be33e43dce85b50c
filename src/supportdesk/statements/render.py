"""A statement as JSON, CSV or PDF, written while its lines are read."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk.config import BusinessRules
from supportdesk.kit.schemas import Money
from supportdesk.kit.spreadsheet import text_cell
from supportdesk.sessions.schemas import format_duration
from supportdesk.statements.service import LineItem, StatementHeader, StatementService

CHUNK = 64 * 1024


def _money(amount: Decimal | None, currency: str) -> dict[str, str] | None:
    """Money as everywhere in the API (``kit.schemas.Money``), as plain JSON."""
    money = Money.maybe(amount, currency)
    return None if money is None else money.model_dump()


def summary(header: StatementHeader) -> dict[str, Any]:
    t = header.totals
    issued: dict[str, Any] = {}
    if header.id is not None and header.issued_at is not None:
        issued = {
            "id": header.id,
            "number": header.number,
            "issued_at": header.issued_at.isoformat().replace("+00:00", "Z"),
        }
    return issued | {
        "customer_id": header.customer_id,
        "customer_name": header.customer_name,
        "from": header.first.isoformat(),
        "to": header.last.isoformat(),
        "currency": t.currency,
        "opening_balance": t.opening_balance,
        "closing_balance": t.closing_balance,
        "units_purchased": t.units_purchased,
        "amount_purchased": _money(t.amount_purchased, t.currency),
        "units_used": t.units_used,
        "units_at_list_price": t.units_at_list_price,
        "units_covered": t.units_covered,
        "amount_due": _money(t.amount_due, t.currency),
    }


class Renderer(ABC):
    media_type: str
    extension: str

    def __init__(self, time_zone: str) -> None:
        self.zone = ZoneInfo(time_zone)

    def local(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    @abstractmethod
    def render(
        self,
        header: StatementHeader,
        entries: AsyncIterator[LineItem],
        sessions: AsyncIterator[LineItem],
    ) -> AsyncIterator[bytes]: ...


class JsonRenderer(Renderer):
    media_type, extension = "application/json", "json"

    def _item(self, item: LineItem, currency: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "at": item.at.isoformat().replace("+00:00", "Z"),
            "description": item.description,
            "units": item.units,
            "units_prepaid": item.units_prepaid,
            "units_at_list_price": item.units_at_list_price,
            "amount": _money(item.amount, currency),
            "notes": item.notes,
        }
        if item.kind == "session":
            data |= {
                "partner": item.partner,
                "supporter": item.supporter,
                "started_at": data["at"],
                "duration_seconds": item.duration_seconds,
                "duration": format_duration(item.duration_seconds or 0),
                "units_covered": item.units_covered,
                "paid_by": item.paid_by,
            }
        return data

    async def render(
        self,
        header: StatementHeader,
        entries: AsyncIterator[LineItem],
        sessions: AsyncIterator[LineItem],
    ) -> AsyncIterator[bytes]:
        currency = header.totals.currency
        head = json.dumps(summary(header), ensure_ascii=False)
        buffer = [head[:-1] + ', "entries": [']
        size = 0
        for name, items in (("entries", entries), ("sessions", sessions)):
            if name == "sessions":
                buffer.append('], "sessions": [')
            first = True
            async for item in items:
                text = ("" if first else ",") + json.dumps(
                    self._item(item, currency), ensure_ascii=False
                )
                first = False
                buffer.append(text)
                size += len(text)
                if size >= CHUNK:
                    yield "".join(buffer).encode()
                    buffer, size = [], 0
        buffer.append("]}")
        yield "".join(buffer).encode()


CSV_COLUMNS = [
    "kind",
    "id",
    "date",
    "description",
    "partner",
    "supporter",
    "duration",
    "duration_seconds",
    "units",
    "units_prepaid",
    "units_at_list_price",
    "units_covered",
    "amount",
    "currency",
    "paid_by",
    "notes",
]


class CsvRenderer(Renderer):
    """A header row, then one row per line item and the totals: comma-separated, UTF-8
    with a byte-order mark so spreadsheets in German and English locales read the
    umlauts; dates as ISO local time, amounts with a decimal point."""

    media_type, extension = "text/csv; charset=utf-8", "csv"

    def _row(self, item: LineItem, currency: str) -> list[object]:
        # Free text (partner, supporter, notes, a debit's reference in the description)
        # comes from customers and imported logs: neutralised. Numbers stay numbers.
        return [
            item.kind,
            item.id,
            self.local(item.at),
            text_cell(item.description),
            text_cell(item.partner),
            text_cell(item.supporter),
            format_duration(item.duration_seconds) if item.duration_seconds is not None else "",
            "" if item.duration_seconds is None else item.duration_seconds,
            item.units,
            item.units_prepaid,
            item.units_at_list_price,
            item.units_covered,
            "" if item.amount is None else f"{item.amount:.2f}",
            currency,
            item.paid_by,
            text_cell(item.notes),
        ]

    async def render(
        self,
        header: StatementHeader,
        entries: AsyncIterator[LineItem],
        sessions: AsyncIterator[LineItem],
    ) -> AsyncIterator[bytes]:
        currency = header.totals.currency
        out = io.StringIO()
        writer = csv.writer(out)
        out.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
        for items in (entries, sessions):
            async for item in items:
                writer.writerow(self._row(item, currency))
                if out.tell() >= CHUNK:
                    yield out.getvalue().encode()
                    out.seek(0)
                    out.truncate()
        t = header.totals
        for kind, units, amount in (
            ("opening_balance", t.opening_balance, None),
            ("purchased", t.units_purchased, t.amount_purchased),
            ("used", t.units_used, None),
            ("covered_by_contract", t.units_covered, None),
            ("at_list_price", t.units_at_list_price, t.amount_due),
            ("closing_balance", t.closing_balance, None),
            ("amount_due", t.units_at_list_price, t.amount_due),
        ):
            row: list[object] = [kind, "", "", kind.replace("_", " "), "", "", "", "", units]
            row += ["", "", "", "" if amount is None else f"{amount:.2f}", currency, "", ""]
            writer.writerow(row)
        yield out.getvalue().encode()


def _latin(text: str, limit: int) -> str:
    """The built-in PDF fonts cover Windows-1252; anything else becomes '?'."""
    clean = text.replace("\n", " ").encode("cp1252", "replace").decode("cp1252")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class PdfRenderer(Renderer):
    """A readable A4 statement made with ReportLab; pages are compressed as they are
    drawn and the finished file is streamed from a temporary file."""

    media_type, extension = "application/pdf", "pdf"
    LINE = 5 * mm

    async def render(
        self,
        header: StatementHeader,
        entries: AsyncIterator[LineItem],
        sessions: AsyncIterator[LineItem],
    ) -> AsyncIterator[bytes]:
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        with spool:
            canvas = Canvas(spool, pagesize=A4, pageCompression=1)
            title = ("Statement", header.number, header.customer_name)
            canvas.setTitle(
                " ".join(part for part in title if part) + f" {header.first}–{header.last}"
            )
            self.canvas, self.y, self.page, self.drawn = canvas, 0.0, 0, 0
            self._new_page(header)
            self._summary(header)
            self._heading("Purchases and other entries")
            async for item in entries:
                self._line(
                    [
                        self.local(item.at)[:16],
                        _latin(item.description, 45),
                        str(item.units),
                        "" if item.amount is None else f"{item.amount:.2f}",
                    ],
                    header,
                )
            self._heading("Remote sessions")
            self._line(
                ["Start", "Partner", "Supporter", "Duration", "Units", "Paid by"], header, bold=True
            )
            async for item in sessions:
                self.drawn += 1
                if self.drawn % 200 == 0:
                    # Drawing is CPU work: let other requests have the event loop meanwhile.
                    await asyncio.sleep(0)
                self._line(
                    [
                        self.local(item.at)[:16],
                        _latin(item.partner, 38),
                        _latin(item.supporter, 18),
                        format_duration(item.duration_seconds or 0),
                        str(item.units),
                        item.paid_by,
                    ],
                    header,
                )
                if item.notes:
                    self._line(["", _latin(item.notes, 95)], header, small=True)
            canvas.save()
            spool.seek(0)
            while chunk := spool.read(CHUNK):
                yield chunk

    COLUMNS = (20 * mm, 52 * mm, 115 * mm, 150 * mm, 170 * mm, 182 * mm)

    def _new_page(self, header: StatementHeader) -> None:
        if self.page:
            self.canvas.showPage()
        self.page += 1
        width, height = A4
        self.canvas.setFont("Helvetica-Bold", 9)
        self.canvas.drawString(
            20 * mm,
            height - 15 * mm,
            _latin(f"Statement - {header.customer_name} - {header.first} to {header.last}", 110),
        )
        self.canvas.setFont("Helvetica", 8)
        self.canvas.drawRightString(width - 20 * mm, 10 * mm, f"Page {self.page}")
        self.y = height - 25 * mm

    def _advance(self, header: StatementHeader) -> None:
        self.y -= self.LINE
        if self.y < 20 * mm:
            self._new_page(header)

    def _heading(self, text: str) -> None:
        self.y -= self.LINE
        self.canvas.setFont("Helvetica-Bold", 11)
        self.canvas.drawString(20 * mm, self.y, text)
        self.y -= self.LINE

    def _line(
        self, cells: list[str], header: StatementHeader, *, bold: bool = False, small: bool = False
    ) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", 7 if small else 8)
        for x, text in zip(self.COLUMNS, cells, strict=False):
            self.canvas.drawString(
                x if not small else x + (10 * mm if x > 20 * mm else 0), self.y, text
            )
        self._advance(header)

    def _summary(self, header: StatementHeader) -> None:
        t = header.totals
        self.canvas.setFont("Helvetica-Bold", 14)
        self.canvas.drawString(20 * mm, self.y, "Statement of support units")
        self.y -= 2 * self.LINE
        rows = [("Statement number", header.number)] if header.number else []
        rows += [
            ("Customer", header.customer_name),
            ("Period", f"{header.first} to {header.last}"),
            ("Opening balance", f"{t.opening_balance} units"),
            ("Purchased", f"{t.units_purchased} units ({t.amount_purchased:.2f} {t.currency})"),
            ("Used from prepaid units", f"{t.units_used} units"),
            ("Covered by contract", f"{t.units_covered} units"),
            ("Billed at list price", f"{t.units_at_list_price} units"),
            ("Closing balance", f"{t.closing_balance} units"),
            ("Amount due", f"{t.amount_due:.2f} {t.currency}"),
        ]
        for label, value in rows:
            self.canvas.setFont("Helvetica", 10)
            self.canvas.drawString(20 * mm, self.y, label)
            self.canvas.drawString(80 * mm, self.y, _latin(value, 80))
            self.y -= self.LINE


RENDERERS: dict[str, type[Renderer]] = {
    "json": JsonRenderer,
    "csv": CsvRenderer,
    "pdf": PdfRenderer,
}


async def stream_statement(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: BusinessRules,
    header: StatementHeader,
    renderer: Renderer,
) -> AsyncIterator[bytes]:
    """Render a statement while reading it, in a read transaction of its own: the
    request's transaction has ended by the time the body flows."""
    async with sessionmaker() as session:
        entries, sessions = StatementService(session, rules).line_items(header)
        async for chunk in renderer.render(header, entries, sessions):
            yield chunk
