"""Test clients: the ``websockets`` package (an independent implementation), driven from
trio through worker threads, and a raw-socket client for what a polite library won't do."""

from __future__ import annotations

import json
import socket
from functools import partial
from typing import Any

import trio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

__all__ = ["Client", "ConnectionClosed", "RawClient"]


class Client:
    """A ``websockets`` sync client; every call runs in a worker thread with a timeout."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.stash: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls, url: str, *, path: str = "/ws", token: str | None = None, **kwargs: Any
    ) -> Client:
        headers = kwargs.pop("additional_headers", {})
        rcvbuf = kwargs.pop("rcvbuf", None)
        if rcvbuf is not None:
            # A small fixed receive buffer (no autotuning, which on loopback may absorb
            # tens of MB), so that not reading quickly backs up into the server.
            host, port = url.removeprefix("ws://").rsplit(":", 1)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            await trio.to_thread.run_sync(sock.connect, (host, int(port)))
            kwargs["sock"] = sock
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("open_timeout", 10)
        kwargs.setdefault("close_timeout", 5)
        kwargs.setdefault("legacy", True)
        ws = await trio.to_thread.run_sync(
            partial(connect, url + path, additional_headers=headers, **kwargs)
        )
        return cls(ws)

    async def send(self, frame: Any) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await trio.to_thread.run_sync(self.ws.send, text)

    async def recv(self, wait_s: float = 10) -> dict[str, Any]:
        if self.stash:
            return self.stash.pop(0)
        text = await trio.to_thread.run_sync(partial(self.ws.recv, wait_s))
        result: dict[str, Any] = json.loads(text)
        return result

    async def request(self, frame: dict[str, Any], wait_s: float = 10) -> dict[str, Any]:
        """Send ``frame`` and return the ack/error with its id (skipping other frames)."""
        await self.send(frame)
        skipped: list[dict[str, Any]] = []
        while True:
            reply = await self.recv(wait_s)
            if reply["type"] in ("ack", "error") and reply.get("id") == frame.get("id"):
                self.stash[:0] = skipped
                return reply
            skipped.append(reply)

    async def messages(self, count: int, wait_s: float = 10) -> list[dict[str, Any]]:
        """The next ``count`` channel messages, unpacking batches."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            frame = await self.recv(wait_s)
            if frame["type"] == "message":
                out.append(frame)
            elif frame["type"] == "batch":
                out.extend(frame["messages"])
        return out

    async def wait_closed(self, wait_s: float = 10) -> int | None:
        """Read until the server closes; return the close code it sent."""
        with trio.fail_after(wait_s + 5):
            while True:
                try:
                    await trio.to_thread.run_sync(partial(self.ws.recv, wait_s))
                except ConnectionClosed as exc:
                    return exc.rcvd.code if exc.rcvd is not None else None

    async def close(self) -> None:
        await trio.to_thread.run_sync(self.ws.close)


class RawClient:
    """A hand-rolled handshake on a plain socket; then it reads only when told to."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, url: str, path: str = "/ws") -> RawClient:
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        sock = trio.socket.socket()
        await sock.connect((host, int(port)))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await sock.send(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode())
        return cls(sock)

    async def send_text(self, text: str) -> None:
        await self.send_frame(text.encode())

    async def send_frame(self, payload: bytes, *, first: int = 0x81, masked: bool = True) -> None:
        """One frame: ``first`` is the FIN/opcode byte (0x81: a whole text frame)."""
        mask = b"\x01\x02\x03\x04" if masked else b""
        header = bytes([first])
        n = len(payload)
        bit = 0x80 if masked else 0
        if n < 126:
            header += bytes([bit | n])
        elif n < 65536:
            header += bytes([bit | 126]) + n.to_bytes(2, "big")
        else:
            header += bytes([bit | 127]) + n.to_bytes(8, "big")
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked else payload
        await self.sock.send(header + mask + body)

    async def read_frames_until_close(self) -> list[tuple[int, bytes]]:
        """Read everything until EOF; return the (opcode, payload) frames seen."""
        data = b""
        while True:
            chunk = await self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        frames = []
        while len(data) >= 2:
            opcode = data[0] & 0x0F
            n = data[1] & 0x7F
            pos = 2
            if n == 126:
                n, pos = int.from_bytes(data[2:4], "big"), 4
            elif n == 127:
                n, pos = int.from_bytes(data[2:10], "big"), 10
            frames.append((opcode, data[pos : pos + n]))
            data = data[pos + n :]
        return frames

    def abort(self) -> None:
        """Vanish: reset the connection (RST), no close frame."""
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.sock.close()

    def close(self) -> None:
        self.sock.close()
