"""Where webhooks may go (issue 14 item 5): globally routable addresses only, whatever
form carries them, and URLs whose host and port say so plainly."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import httpcore
import pytest

from supportdesk.webhooks.addresses import judge
from supportdesk.webhooks.service import InvalidWebhookUrl, check_url_form
from supportdesk.webhooks.transport import PinnedBackend, pinned

pytestmark = pytest.mark.security


def teredo(server: str, client: str) -> str:
    """A Teredo address (2001::/32): the server, then the client's bits inverted."""
    bits = (
        (0x2001_0000 << 96)
        | (int(IPv4Address(server)) << 64)
        | (0x8000 << 48)
        | (0x63BF << 32)
        | (int(IPv4Address(client)) ^ 0xFFFF_FFFF)
    )
    return str(IPv6Address(bits))


REFUSED = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared address space"),
    ("100.100.100.200", "shared address space"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not bound
    ("255.255.255.255", "private"),
    ("224.0.0.1", "multicast"),
    ("198.18.0.1", "private"),
    ("192.0.2.1", "private"),
    ("240.0.0.1", "special-purpose"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique local"),
    ("fd00::1", "unique local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, which is loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254"),
    ("::7f00:1", "reserved"),  # IPv4-compatible ::127.0.0.1
    ("2002:7f00:0001::", "6to4 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 form of 169.254.169.254"),
    ("2002:6464:64c8::", "6to4 form of 100.100.100.200"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    (teredo("65.54.227.120", "127.0.0.1"), "Teredo form of 127.0.0.1"),
    (teredo("10.0.0.1", "8.8.8.8"), "Teredo form of 10.0.0.1"),
    ("2001:db8::1", "private"),
    ("100::1", "private"),
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "2002:0808:0808::",
    "64:ff9b::808:808",
    teredo("65.54.227.120", "8.8.8.8"),
]


class TestAddressPolicy:
    @pytest.mark.parametrize(("address", "reason"), REFUSED)
    def test_refused(self, address: str, reason: str) -> None:
        verdict = judge(address)
        assert not verdict.allowed
        assert reason in verdict.reason

    @pytest.mark.parametrize("address", ALLOWED)
    def test_allowed(self, address: str) -> None:
        assert judge(address).allowed

    def test_takes_address_objects(self) -> None:
        assert judge(IPv4Address("8.8.8.8")).allowed
        assert not judge(IPv6Address("::ffff:127.0.0.1")).allowed


class TestUrlForm:
    @pytest.mark.parametrize(
        "url",
        [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://10.1/",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://example.com:99999/",
            "https://example.com:-1/",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https:///nohost",
        ],
    )
    def test_refused(self, url: str) -> None:
        with pytest.raises(InvalidWebhookUrl):
            check_url_form(url)

    @pytest.mark.parametrize(
        ("url", "host", "port"),
        [
            ("https://example.com/hook", "example.com", 443),
            ("http://example.com/hook", "example.com", 80),
            ("https://Example.COM:8443/hook", "example.com", 8443),
            ("https://straße.example/hook", "xn--strae-oqa.example", 443),
            ("http://8.8.8.8:65535/", "8.8.8.8", 65535),
            ("http://[2606:4700:4700::1111]:1/", "2606:4700:4700::1111", 1),
            ("http://1.example/", "1.example", 80),
        ],
    )
    def test_host_and_port_as_the_client_connects(self, url: str, host: str, port: int) -> None:
        assert check_url_form(url) == (host, port)


class TestPinnedBackend:
    async def test_connects_nowhere_without_a_checked_address(self) -> None:
        backend = PinnedBackend()
        with pytest.raises(httpcore.ConnectError):
            await backend.connect_tcp("example.com", 443)
        with (
            pinned("example.com", 443, IPv4Address("93.184.216.34")),
            pytest.raises(httpcore.ConnectError),
        ):
            await backend.connect_tcp("other.example", 443)
        with pytest.raises(httpcore.ConnectError):
            await backend.connect_unix_socket("/run/docker.sock")
