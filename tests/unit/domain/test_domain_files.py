from __future__ import annotations

import pytest

from supportdesk.domain.files import sniff_image


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_images_are_known_by_their_bytes(head: bytes, expected: str) -> None:
    assert sniff_image(head) == expected


@pytest.mark.parametrize(
    "head", [b"", b"%PDF-1.7", b"PK\x03\x04", b"RIFF\x24\x00\x00\x00WAVE", b"not an image"]
)
def test_other_bytes_are_not_images(head: bytes) -> None:
    assert sniff_image(head) is None
