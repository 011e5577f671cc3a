"""Pure header logic: CORS, ETags, content coding, and trusted-proxy resolution."""

from __future__ import annotations

import gzip

import pytest

from perfgate.http import negotiation as neg
from perfgate.http.proxy import parse_networks, resolve_client

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1/32"])


def test_cors_origin_allow_list() -> None:
    assert neg.cors_origin("https://a.example", ("https://a.example",)) == "https://a.example"
    assert neg.cors_origin("https://evil.example", ("https://a.example",)) is None
    assert neg.cors_origin("https://any.example", ("*",)) == "*"
    assert neg.cors_origin(None, ("*",)) is None
    assert neg.cors_origin("https://a.example", ()) is None


def test_preflight_grants_only_known_headers() -> None:
    headers = neg.preflight_headers("https://a.example", "Authorization, X-Evil")
    assert headers["Access-Control-Allow-Headers"] == "authorization"
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_etag_comparison_is_weak_and_coding_blind() -> None:
    tag = neg.strong_etag(b"{}")
    assert tag.startswith('"') and tag.endswith('"')
    assert neg.etag_matches(tag, tag)
    assert neg.etag_matches(f'"other", W/{tag}', tag)
    assert neg.etag_matches(neg.coded_etag(tag), tag)
    assert neg.etag_matches("*", tag)
    assert not neg.etag_matches('"other"', tag)
    assert not neg.etag_matches(None, tag)
    assert neg.coded_etag(tag) != tag


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=bogus", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert neg.accepts_gzip(header) is expected


def test_gzip_round_trips_and_vary_merges() -> None:
    body = b'{"x": "' + b"a" * 5000 + b'"}'
    assert gzip.decompress(neg.gzip_body(body)) == body
    assert neg.add_vary("Origin", "Accept-Encoding", "origin") == "Origin, Accept-Encoding"
    assert neg.is_compressible("application/json") and not neg.is_compressible("image/png")


def h(**pairs: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in pairs.items()]


def test_forwarded_headers_ignored_from_untrusted_peer() -> None:
    headers = h(x_forwarded_for="1.2.3.4", x_forwarded_proto="https")
    assert resolve_client("203.0.113.9", "http", headers, TRUSTED) == ("203.0.113.9", "http")


def test_rightmost_untrusted_hop_is_the_client() -> None:
    # The client forged "6.6.6.6"; our proxy (10.0.0.2) appended the real peer 198.51.100.7.
    headers = h(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.5", x_forwarded_proto="https")
    assert resolve_client("10.0.0.2", "http", headers, TRUSTED) == ("198.51.100.7", "https")


def test_rfc7239_forwarded() -> None:
    headers = h(forwarded='for="[2001:db8::1]:4711";proto=https, for=10.0.0.9')
    assert resolve_client("127.0.0.1", "http", headers, TRUSTED) == ("2001:db8::1", "https")


def test_bogus_proto_is_ignored() -> None:
    headers = h(x_forwarded_for="198.51.100.7", x_forwarded_proto="javascript")
    assert resolve_client("127.0.0.1", "http", headers, TRUSTED) == ("198.51.100.7", "http")


def test_no_trusted_proxies_means_the_peer() -> None:
    headers = h(x_forwarded_for="1.2.3.4")
    assert resolve_client("127.0.0.1", "http", headers, ()) == ("127.0.0.1", "http")
