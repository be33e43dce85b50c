"""The messages' words: Jinja templates under ``templates/<language>/<kind>.<part>.j2``,
a subject, a plain-text and an HTML part (the HTML part escaped automatically)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from supportdesk.domain.notifications import Language, NotificationKind

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
        auto_reload=False,
    )


def render_message(
    kind: NotificationKind, language: Language, context: dict[str, Any]
) -> RenderedMessage:
    env = environment()
    values = {**context, "language": language.value}

    def part(name: str) -> str:
        return env.get_template(f"{language.value}/{kind.value}.{name}.j2").render(values)

    # A subject is one line: a newline in it would start a header of its own.
    subject = " ".join(part("subject").split())
    return RenderedMessage(subject=subject, text=part("txt"), html=part("html"))
