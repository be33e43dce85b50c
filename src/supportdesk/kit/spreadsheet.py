"""Text for CSV cells that spreadsheets open without running it.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
as a formula by Excel, LibreOffice and Google Sheets (CSV injection, OWASP). Free text
from customers and imported logs is written with a leading ``'`` in that case, which the
spreadsheet shows as text and otherwise leaves alone. Numbers the service formats itself
are written as they are, so a negative amount stays a number that sums.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """``value`` made safe to open as a CSV cell; unchanged unless it starts a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
