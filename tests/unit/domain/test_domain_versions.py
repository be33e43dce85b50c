"""Version numbers compare as versions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import InvalidVersion, compare_versions, parse_version, try_parse_version


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.10", "1.9", 1),
        ("2.10.0", "2.9.0", 1),
        ("2.1", "2.1.0", 0),
        ("2.1.0.0", "2.1", 0),
        ("2", "2.0.1", -1),
        ("v2.1.0", "2.1.0", 0),
        ("2.1.0-beta", "2.1.0", -1),
        ("2.1.0-beta", "2.0.9", 1),
        ("2.1.0-alpha", "2.1.0-beta", -1),
        ("2.1.0-beta", "2.1.0-rc.1", -1),
        ("2.1.0-rc.2", "2.1.0-rc.10", -1),
        ("2.1.0rc1", "2.1.0-RC.1", 0),
        ("2.1.0-1", "2.1.0-alpha", -1),
        ("2.1.0+build.7", "2.1.0", 0),
        ("2.1-beta", "2.1.0-beta", 0),
        ("10.0", "9.99.99", 1),
        (" 1.2.3 ", "1.2.3", 0),
    ],
)
def test_compare(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", "latest", "１.２", "v", "1.", ".1", "1..2", "1.2 beta", "1.2-", "1.2+", "x1.2"],
)
def test_unreadable_versions_raise_a_domain_error(text: str) -> None:
    with pytest.raises(InvalidVersion):
        parse_version(text)
    assert try_parse_version(text) is None


def test_try_parse_handles_none() -> None:
    assert try_parse_version(None) is None
    assert try_parse_version("2.0") == parse_version("2.0.0")


def test_equal_versions_hash_equal() -> None:
    assert {parse_version("2.1"), parse_version("2.1.0")} == {parse_version("2.1.0.0")}
    assert parse_version("2.1.0-beta").is_prerelease


parts = st.lists(st.integers(0, 30), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(parts, parts)
def test_release_numbers_compare_like_padded_tuples(a: list[int], b: list[int]) -> None:
    width = max(len(a), len(b))
    pa, pb = a + [0] * (width - len(a)), b + [0] * (width - len(b))
    expected = (pa > pb) - (pa < pb)
    assert compare_versions(".".join(map(str, a)), ".".join(map(str, b))) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_any_text_parses_or_raises_invalid_version(text: str) -> None:
    try:
        version = parse_version(text)
    except InvalidVersion:
        return
    assert version == parse_version(text.upper())
    assert version.release
