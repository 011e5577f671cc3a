"""Behind a reverse proxy: the gateway sees the client a trusted proxy forwards, over real
loopback handshakes (issue 16.6), with the HTTP side's rules (perfgate/forwarded.py)."""

import logging

import pytest
import trio
from websockets.exceptions import InvalidStatus

from perfgate.auth import Authenticator
from perfgate.broker import MemoryHub
from perfgate.config import GatewayConfig
from perfgate.gateway import CloseInfo, Gateway
from tests.gateway.conftest import eventually
from tests.gateway.wsclient import Client


async def start(nursery: trio.Nursery, trusted: tuple[str, ...], closes: list[CloseInfo]) -> str:
    config = GatewayConfig(bind="127.0.0.1:0", max_connections=1)
    hub = MemoryHub(10, 60.0, clock=trio.current_time)
    gateway = Gateway(
        config, hub, Authenticator({}), on_close=closes.append, trusted_proxies=trusted
    )
    url: str = await nursery.start(gateway.run)
    return url


async def client_seen(url: str, closes: list[CloseInfo], headers: dict[str, str]) -> str | None:
    client = await Client.connect(url, additional_headers=headers)
    await client.recv()
    await client.close()
    await eventually(lambda: bool(closes))
    return closes.pop().client


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "203.0.113.7, 127.0.0.2"}, "203.0.113.7"),
        ({"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}, "203.0.113.7"),
        ({"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}, "2001:db8::1"),
        ({"Forwarded": "for=192.0.2.60:8080, for=127.0.0.3"}, "192.0.2.60"),
        ({}, "127.0.0.1"),
    ],
)
async def test_a_trusted_proxy_names_the_client(
    nursery: trio.Nursery, headers: dict[str, str], expected: str
) -> None:
    closes: list[CloseInfo] = []
    url = await start(nursery, ("127.0.0.0/8",), closes)
    assert await client_seen(url, closes, headers) == expected


async def test_an_untrusted_peer_cannot_claim_another_address(nursery: trio.Nursery) -> None:
    closes: list[CloseInfo] = []
    url = await start(nursery, ("10.0.0.0/8",), closes)
    forged = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.8"}
    assert await client_seen(url, closes, forged) == "127.0.0.1"


async def test_a_refused_handshake_is_logged_with_the_real_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    closes: list[CloseInfo] = []
    url = await start(nursery, ("127.0.0.0/8",), closes)
    first = await Client.connect(url)  # max_connections=1: the next is refused
    await first.recv()
    with (
        caplog.at_level(logging.INFO, logger="perfgate.gateway"),
        pytest.raises((InvalidStatus, OSError)),
    ):
        await Client.connect(url, additional_headers={"X-Forwarded-For": "203.0.113.9"})
    assert any("203.0.113.9" in r.getMessage() and "503" in r.getMessage() for r in caplog.records)
    await first.close()
