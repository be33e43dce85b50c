"""Every message renders in both languages from the template files, and the HTML part
escapes what customers and supporters wrote."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from supportdesk.domain.notifications import Language, NotificationKind
from supportdesk.notifications.service import date_text, money_text
from supportdesk.notifications.templates import TEMPLATES_DIR, render_message

CONTEXT: dict[NotificationKind, dict[str, Any]] = {
    NotificationKind.TICKET_RECEIVED: {
        "ticket": {"id": "tkt_1", "subject": "<i>Import</i>", "blockers": [], "held": False}
    },
    NotificationKind.SUPPORTER_QUESTION: {
        "ticket": {"id": "tkt_1", "subject": "Import"},
        "comment": {"id": "cmt_1", "body": "<script>alert(1)</script>"},
    },
    NotificationKind.TICKET_RESOLVED: {"ticket": {"id": "tkt_1", "subject": "Import"}},
    NotificationKind.LOW_BALANCE: {
        "balance": 1,
        "level": 4,
        "unit_minutes": 15,
        "currency": "EUR",
        "list_price": "30,00",
        "packages": [{"units": 10, "unit_price": "28,00", "amount": "280,00"}],
    },
    NotificationKind.STATEMENT_ISSUED: {
        "statement": {"customer_id": "cus_1", "from": "2026-11-01", "to": "2026-11-30"},
        "period_from": "01.11.2026",
        "period_to": "30.11.2026",
        "opening_balance": 0,
        "closing_balance": 2,
        "amount_due": None,
    },
}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_renders_in_every_language(kind: NotificationKind, language: Language) -> None:
    context = {"customer_name": "Fa. Maier", "contact_name": "Horst", **CONTEXT[kind]}
    message = render_message(kind, language, context)
    assert message.subject
    assert "\n" not in message.subject
    assert "Horst" in message.text
    assert message.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'lang="{language.value}"' in message.html
    for part in ("subject", "txt", "html"):
        assert (TEMPLATES_DIR / language.value / f"{kind.value}.{part}.j2").is_file()


@pytest.mark.parametrize("language", list(Language))
def test_the_statement_subject_names_its_number(language: Language) -> None:
    issued = CONTEXT[NotificationKind.STATEMENT_ISSUED]
    context = {
        "customer_name": "Fa. Maier",
        "contact_name": None,
        **issued,
        "statement": {**issued["statement"], "id": "stm_1", "number": "ST-2026-000042"},
    }
    message = render_message(NotificationKind.STATEMENT_ISSUED, language, context)
    assert "ST-2026-000042" in message.subject


def test_html_is_escaped_text_is_verbatim() -> None:
    context = {
        "customer_name": "X",
        "contact_name": None,
        **CONTEXT[NotificationKind.SUPPORTER_QUESTION],
    }
    message = render_message(NotificationKind.SUPPORTER_QUESTION, Language.EN, context)
    assert "<script>alert(1)</script>" in message.text
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html


def test_each_blocker_is_explained_in_plain_words() -> None:
    blockers = [
        "missing_environment",
        "missing_steps",
        "missing_screenshot",
        "missing_database_backup",
        "outdated_version",
        "requires_premium",
    ]
    context = {
        "customer_name": "X",
        "contact_name": None,
        "ticket": {"id": "t", "subject": "s", "blockers": blockers, "held": True},
    }
    for language in Language:
        text = render_message(NotificationKind.TICKET_RECEIVED, language, context).text
        assert not any(code in text for code in blockers)
        assert text.count("\n- ") == len(blockers)


def test_numbers_and_dates_as_the_reader_writes_them() -> None:
    assert money_text(Decimal("1200"), Language.DE) == "1.200,00"
    assert money_text("1200.5", Language.EN) == "1,200.50"
    assert date_text("2026-11-01", Language.DE) == "01.11.2026"
    assert date_text("2026-11-01", Language.EN) == "2026-11-01"
