"""The limits a user configures, seen over real HTTP: a full job queue, the long-poll cap,
keep-alive requests per connection, and the listen backlog."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

SLOW = {"task": "sleep", "args": {"seconds": 60, "steps": 1}}


async def test_a_full_queue_answers_429_with_retry_after_and_records_nothing(
    service_factory: Any,
) -> None:
    service = await service_factory(pool={"min_workers": 1, "max_workers": 1, "max_queue": 2})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        accepted = [(await http.post("/v1/jobs", json=SLOW)).status_code for _ in range(3)]
        assert accepted == [202, 202, 202]  # one running, two waiting
        refused = await http.post("/v1/jobs", json={**SLOW, "idempotency_key": "late"})
        assert refused.status_code == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"  # nothing has finished: no estimate yet
        problem = refused.json()
        assert (problem["status"], problem["code"]) == (429, "queue_full")
        # Refused means not accepted: the journal holds the three jobs only.
        listed = (await http.get("/v1/jobs", params={"limit": 100})).json()["jobs"]
        assert len(listed) == 3
        again = await http.post("/v1/jobs", json={**SLOW, "idempotency_key": "late"})
        assert again.status_code == 429  # the key was not taken by the refused submit


async def test_a_long_poll_is_capped_by_max_wait_s(service_factory: Any) -> None:
    service = await service_factory(http={"max_wait_s": 0.5})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job = (await http.post("/v1/jobs", json=SLOW)).json()
        with trio.fail_after(20):  # asked for an hour; the cap answers long before
            answer = await http.get(f"/v1/jobs/{job['id']}", params={"wait": 3600})
        assert answer.status_code == 200
        assert answer.json()["state"] in ("queued", "running")  # the job has not finished


async def read_response(stream: trio.SocketStream, buffer: bytearray) -> bytes:
    """One whole HTTP/1.1 response's head (lower-cased), its body read by Content-Length."""
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        assert chunk, "the connection closed before an answer"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    head = head.lower()
    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        assert chunk, "the connection closed mid-body"
        rest += chunk
    buffer[:] = rest[length:]
    return head


async def test_a_keep_alive_connection_closes_after_max_requests(service_factory: Any) -> None:
    service = await service_factory(http={"max_requests_per_connection": 3})
    url = urlsplit(service.http)
    assert url.hostname is not None and url.port is not None
    request = f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    buffer = bytearray()
    heads = []
    with trio.fail_after(20):
        async with await trio.open_tcp_stream(url.hostname, url.port) as stream:
            for _ in range(3):
                await stream.send_all(request)
                heads.append(await read_response(stream, buffer))
            assert await stream.receive_some(65536) == b""  # then the server hangs up
    assert [head.split(b" ")[1] for head in heads] == [b"200"] * 3
    assert [b"connection: close" in head for head in heads] == [False, False, True]


async def test_the_listen_backlog_is_the_configured_one(service_factory: Any) -> None:
    service = await service_factory(http={"backlog": 7})
    port = urlsplit(service.http).port
    ss = await trio.run_process(["ss", "-Hltn", f"sport = :{port}"], capture_stdout=True)
    listing = ss.stdout.decode().split()
    # ss -l: State Recv-Q Send-Q Local Peer; for a listening socket Send-Q is the backlog.
    assert listing[0] == "LISTEN" and listing[2] == "7", listing
