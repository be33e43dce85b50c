"""Blockers: what a ticket lacks before work can start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from supportdesk.domain import (
    Blocker,
    SupportGroup,
    TicketCategory,
    TicketFacts,
    blocks,
    compute_blockers,
    holds,
)

B = Blocker
C = TicketCategory
STANDARD = SupportGroup.STANDARD

COMPLETE = TicketFacts(
    category=C.BUG_REPORT,
    os="Windows 11",
    host_application="Act! 26",
    product="act-sync",
    addon_version="2.10.0",
    latest_version="2.10.0",
    steps_to_reproduce="1. open 2. click sync",
    has_image_screenshot=True,
    has_database_backup=True,
)
EMPTY = TicketFacts(category=C.BUG_REPORT)


def test_codes_are_the_documented_strings_in_order() -> None:
    assert [b.value for b in Blocker] == [
        "missing_environment",
        "missing_steps",
        "missing_screenshot",
        "missing_database_backup",
        "outdated_version",
        "requires_premium",
    ]


@pytest.mark.parametrize("category", [C.BUG_REPORT, C.OPERATION, C.DATABASE_DEFECT])
def test_complete_problem_report_has_no_blockers(category: TicketCategory) -> None:
    assert compute_blockers(replace(COMPLETE, category=category), STANDARD) == ()


def test_empty_bug_report_lacks_environment_steps_and_screenshot() -> None:
    assert compute_blockers(EMPTY, STANDARD) == (
        B.MISSING_ENVIRONMENT,
        B.MISSING_STEPS,
        B.MISSING_SCREENSHOT,
    )


def test_empty_database_defect_also_lacks_the_backup() -> None:
    facts = replace(EMPTY, category=C.DATABASE_DEFECT)
    assert compute_blockers(facts, STANDARD) == (
        B.MISSING_ENVIRONMENT,
        B.MISSING_STEPS,
        B.MISSING_SCREENSHOT,
        B.MISSING_DATABASE_BACKUP,
    )


@pytest.mark.parametrize("category", [C.INSTALLATION, C.CHANGE_REQUEST, C.HARDWARE_EXCHANGE])
def test_other_categories_need_nothing(category: TicketCategory) -> None:
    assert compute_blockers(TicketFacts(category=category), STANDARD) == ()


@pytest.mark.parametrize(
    "change",
    [{"os": None}, {"host_application": None}, {"os": "  "}, {"addon_version": ""}],
)
def test_environment_needs_os_host_and_version_of_a_named_product(
    change: dict[str, str | None],
) -> None:
    facts = replace(COMPLETE, latest_version=None, **change)  # type: ignore[arg-type]
    assert compute_blockers(facts, STANDARD) == (B.MISSING_ENVIRONMENT,)


def test_no_product_needs_no_version() -> None:
    facts = replace(COMPLETE, product=None, addon_version=None)
    assert compute_blockers(facts, STANDARD) == ()


def test_blank_steps_are_missing() -> None:
    assert compute_blockers(replace(COMPLETE, steps_to_reproduce=" \n"), STANDARD) == (
        B.MISSING_STEPS,
    )


def test_screenshot_must_be_an_image() -> None:
    facts = replace(COMPLETE, has_image_screenshot=False)
    assert compute_blockers(facts, STANDARD) == (B.MISSING_SCREENSHOT,)


class TestVersions:
    def test_older_addon_is_outdated(self) -> None:
        facts = replace(COMPLETE, addon_version="2.9.0", latest_version="2.10.0")
        assert compute_blockers(facts, STANDARD) == (B.OUTDATED_VERSION,)

    def test_newer_or_equal_addon_is_current(self) -> None:
        for installed in ("2.10.0", "2.10", "2.10.1", "3.0", "v2.10.0"):
            facts = replace(COMPLETE, addon_version=installed, latest_version="2.10.0")
            assert compute_blockers(facts, STANDARD) == (), installed

    def test_prerelease_of_the_latest_is_outdated(self) -> None:
        facts = replace(COMPLETE, addon_version="2.10.0-beta", latest_version="2.10.0")
        assert compute_blockers(facts, STANDARD) == (B.OUTDATED_VERSION,)

    @pytest.mark.parametrize("category", list(TicketCategory))
    def test_product_without_addon_version_is_missing_environment_not_outdated(
        self, category: TicketCategory
    ) -> None:
        facts = replace(COMPLETE, category=category, addon_version=None)
        found = compute_blockers(facts, SupportGroup.PREMIUM)
        assert B.MISSING_ENVIRONMENT in found
        assert B.OUTDATED_VERSION not in found

    def test_outdated_applies_to_any_category_naming_a_product(self) -> None:
        facts = TicketFacts(
            category=C.INSTALLATION, product="act-sync", addon_version="1.0", latest_version="2.0"
        )
        assert compute_blockers(facts, STANDARD) == (B.OUTDATED_VERSION,)

    def test_without_latest_version_nothing_is_outdated(self) -> None:
        facts = replace(COMPLETE, addon_version="0.1", latest_version=None)
        assert compute_blockers(facts, STANDARD) == ()

    def test_unreadable_addon_version_cannot_be_shown_current(self) -> None:
        facts = replace(COMPLETE, addon_version="latest", latest_version="2.0")
        assert compute_blockers(facts, STANDARD) == (B.OUTDATED_VERSION,)

    def test_unreadable_catalogue_version_blocks_nobody(self) -> None:
        facts = replace(COMPLETE, addon_version="1.0", latest_version="n/a")
        assert compute_blockers(facts, STANDARD) == ()


class TestRequiresPremium:
    def test_how_to_needs_premium_for_standard(self) -> None:
        assert compute_blockers(TicketFacts(category=C.HOW_TO), STANDARD) == (B.REQUIRES_PREMIUM,)

    @pytest.mark.parametrize("group", [SupportGroup.PREMIUM, SupportGroup.CONTRACT])
    def test_how_to_is_fine_for_paying_customers(self, group: SupportGroup) -> None:
        assert compute_blockers(TicketFacts(category=C.HOW_TO), group) == ()


class TestHolding:
    def test_only_standard_is_held(self) -> None:
        assert blocks(SupportGroup.STANDARD)
        assert not blocks(SupportGroup.PREMIUM)
        assert not blocks(SupportGroup.CONTRACT)

    def test_codes_are_listed_for_every_group_but_hold_only_standard(self) -> None:
        for group in SupportGroup:
            found = compute_blockers(EMPTY, group)
            assert found == (B.MISSING_ENVIRONMENT, B.MISSING_STEPS, B.MISSING_SCREENSHOT)
            assert holds(found, group) is (group == SupportGroup.STANDARD)
        assert not holds((), STANDARD)
