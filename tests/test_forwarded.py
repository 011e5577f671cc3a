"""Who the client is behind a trusted proxy (perfgate/forwarded.py), pure."""

from __future__ import annotations

from perfgate.forwarded import parse_networks, resolve_client

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8::/32"])


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    assert resolve_client("198.51.100.7", "http", headers, PROXIES) == ("198.51.100.7", "http")
    # No trusted proxies configured: never believed, whoever the peer is.
    assert resolve_client("10.0.0.1", "http", headers, ()) == ("10.0.0.1", "http")


def test_the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy() -> None:
    # The left-most entry was written by the client itself and must not win.
    headers = [(b"X-Forwarded-For", b"1.2.3.4, 203.0.113.9, 10.1.1.1")]
    assert resolve_client("10.0.0.1", "http", headers, PROXIES) == ("203.0.113.9", "http")


def test_a_chain_of_trusted_proxies_only_gives_its_left_most_hop() -> None:
    headers = [(b"x-forwarded-for", b"10.3.3.3, 10.2.2.2")]
    assert resolve_client("10.0.0.1", "http", headers, PROXIES) == ("10.3.3.3", "http")


def test_x_forwarded_proto_takes_the_last_value_and_only_known_schemes() -> None:
    last = [(b"x-forwarded-proto", b"http, HTTPS")]
    assert resolve_client("10.0.0.1", "http", last, PROXIES) == ("10.0.0.1", "https")
    bogus = [(b"x-forwarded-proto", b"gopher")]
    assert resolve_client("10.0.0.1", "http", bogus, PROXIES) == ("10.0.0.1", "http")


def test_rfc_7239_forwarded_with_ports_and_ipv6_and_it_wins_over_x_forwarded() -> None:
    headers = [
        (b"forwarded", b'for="[2001:db9::1]:4711";proto=https, for=10.2.2.2:8080'),
        (b"x-forwarded-for", b"198.51.100.1"),
    ]
    assert resolve_client("2001:db8::5", "http", headers, PROXIES) == ("2001:db9::1", "https")
    ipv4_port = [(b"Forwarded", b"for=192.0.2.60:8080")]
    assert resolve_client("10.0.0.1", "ws", ipv4_port, PROXIES) == ("192.0.2.60", "ws")


def test_an_unparseable_hop_counts_as_untrusted_and_no_peer_stays_none() -> None:
    headers = [(b"x-forwarded-for", b"unknown, 10.1.1.1")]
    assert resolve_client("10.0.0.1", "http", headers, PROXIES) == ("unknown", "http")
    assert resolve_client(None, "http", headers, PROXIES) == (None, "http")
