"""What a ticket still lacks before work can start."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .groups import SupportGroup
from .tickets import TicketCategory
from .versions import try_parse_version


class Blocker(StrEnum):
    """Missing pieces, in the order tickets list them."""

    MISSING_ENVIRONMENT = "missing_environment"
    MISSING_STEPS = "missing_steps"
    MISSING_SCREENSHOT = "missing_screenshot"
    MISSING_DATABASE_BACKUP = "missing_database_backup"
    OUTDATED_VERSION = "outdated_version"
    REQUIRES_PREMIUM = "requires_premium"


_ORDER = tuple(Blocker)

DIAGNOSED_CATEGORIES: frozenset[TicketCategory] = frozenset(
    {TicketCategory.BUG_REPORT, TicketCategory.OPERATION, TicketCategory.DATABASE_DEFECT}
)
"""Problems a supporter must reproduce: they need environment, steps and a screenshot."""


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the blocker rules look at; blank text counts as not given.

    ``latest_version`` is the named product's current version from the catalogue.
    """

    category: TicketCategory
    os: str | None = None
    host_application: str | None = None
    product: str | None = None
    addon_version: str | None = None
    latest_version: str | None = None
    steps_to_reproduce: str | None = None
    has_image_screenshot: bool = False
    has_database_backup: bool = False


def _given(text: str | None) -> bool:
    return text is not None and bool(text.strip())


def compute_blockers(facts: TicketFacts, group: SupportGroup) -> tuple[Blocker, ...]:
    """The blockers of a ticket, in ``Blocker`` order.

    Versions: a product named without ``addon_version`` gives ``missing_environment``
    (whatever the category, when the product has a ``latest_version`` to check
    against), never ``outdated_version``. An ``addon_version`` that cannot be read as a
    version counts as outdated, since it cannot be shown to be current; a catalogue
    ``latest_version`` that cannot be read blocks nobody, the fault being ours.
    """
    found: set[Blocker] = set()
    named = _given(facts.product)
    has_version = _given(facts.addon_version)
    diagnosed = facts.category in DIAGNOSED_CATEGORIES

    if diagnosed:
        if not (_given(facts.os) and _given(facts.host_application)) or (named and not has_version):
            found.add(Blocker.MISSING_ENVIRONMENT)
        if not _given(facts.steps_to_reproduce):
            found.add(Blocker.MISSING_STEPS)
        if not facts.has_image_screenshot:
            found.add(Blocker.MISSING_SCREENSHOT)
    if facts.category == TicketCategory.DATABASE_DEFECT and not facts.has_database_backup:
        found.add(Blocker.MISSING_DATABASE_BACKUP)

    latest = try_parse_version(facts.latest_version) if named else None
    if latest is not None:
        if not has_version:
            found.add(Blocker.MISSING_ENVIRONMENT)
        else:
            installed = try_parse_version(facts.addon_version)
            if installed is None or installed < latest:
                found.add(Blocker.OUTDATED_VERSION)

    if facts.category == TicketCategory.HOW_TO and group == SupportGroup.STANDARD:
        found.add(Blocker.REQUIRES_PREMIUM)
    return tuple(blocker for blocker in _ORDER if blocker in found)


def blocks(group: SupportGroup) -> bool:
    """Whether blockers hold a ticket of ``group`` in ``awaiting_customer``."""
    return group == SupportGroup.STANDARD


def holds(blockers: tuple[Blocker, ...], group: SupportGroup) -> bool:
    """Whether these blockers hold the ticket (listed for every group, binding for one)."""
    return bool(blockers) and blocks(group)
