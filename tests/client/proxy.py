"""A TCP forwarder whose connections a test can cut: the server side of a "lost connection"."""

from __future__ import annotations

import trio


class CuttableProxy:
    """Forwards each connection to ``target`` (set once known); :meth:`cut` closes every
    connection open now, as a network failure or a server-side close would."""

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.port = 0
        self.accepted = 0
        self._open: list[trio.CancelScope] = []

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._forward, listeners)

    async def _forward(self, client: trio.SocketStream) -> None:
        assert self.target is not None
        self.accepted += 1
        with trio.CancelScope() as scope:
            self._open.append(scope)
            upstream = await trio.open_tcp_stream(*self.target)
            async with client, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(_pump, client, upstream, nursery.cancel_scope)
                nursery.start_soon(_pump, upstream, client, nursery.cancel_scope)

    def cut(self) -> None:
        for scope in self._open:
            scope.cancel()
        self._open.clear()


async def _pump(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except trio.BrokenResourceError:
        pass
    done.cancel()
