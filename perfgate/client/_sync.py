"""The synchronous client: :class:`AsyncClient` run on an event loop in a background thread
(an anyio blocking portal), so every method is the async one, called and waited for."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from perfgate.client._async import AsyncClient, AsyncJob
from perfgate.client._events import JobEvent


class Client:
    """A blocking client of one perfgate server: ``with Client(url) as client: ...`` (or call
    :meth:`close`). The same options and guarantees as :class:`AsyncClient`; its loop runs in
    a thread of its own (``backend``: ``"trio"`` or ``"asyncio"``)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        use_ws: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        backend: str = "trio",
    ) -> None:
        self._portal_cm = start_blocking_portal(backend)
        self._portal: BlockingPortal = self._portal_cm.__enter__()
        try:
            self._async = AsyncClient(
                url, token=token, timeout_s=timeout_s, use_ws=use_ws, ssl_context=ssl_context
            )
            self._client_cm: AbstractContextManager[AsyncClient] = (
                self._portal.wrap_async_context_manager(self._async)
            )
            self._client_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._closed = False

    def close(self) -> None:
        """Close the connections and stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def submit(
        self,
        task: str,
        args: Any = None,
        *,
        priority: str | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """See :meth:`AsyncClient.submit`."""
        call = functools.partial(
            self._async.submit,
            task,
            args,
            priority=priority,
            timeout_s=timeout_s,
            max_retries=max_retries,
            idempotency_key=idempotency_key,
        )
        return Job(self._portal, self._portal.call(call))

    def run(
        self, task: str, args: Any = None, *, timeout: float | None = None, **options: Any
    ) -> Any:
        """See :meth:`AsyncClient.run`."""
        return self._portal.call(
            functools.partial(self._async.run, task, args, timeout=timeout, **options)
        )

    def map(
        self,
        task: str,
        args_iterable: Iterable[Any],
        *,
        timeout: float | None = None,
        concurrency: int = 256,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """See :meth:`AsyncClient.map`."""
        call = functools.partial(
            self._async.map,
            task,
            list(args_iterable),
            timeout=timeout,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
        )
        return self._portal.call(call)

    def job(self, job_id: str) -> Job:
        """A handle on an existing job."""
        return Job(self._portal, self._async.job(job_id))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """See :meth:`AsyncClient.request`."""
        return self._portal.call(functools.partial(self._async.request, method, path, **kwargs))


class Job:
    """A submitted job, as :class:`AsyncJob` with blocking methods."""

    def __init__(self, portal: BlockingPortal, job: AsyncJob) -> None:
        self._portal = portal
        self._job = job
        self.id = job.id

    def __repr__(self) -> str:
        return f"<Job {self.id} {self._job.state}>"

    @property
    def job(self) -> dict[str, Any]:
        return self._job.job

    @property
    def state(self) -> str:
        return self._job.state

    def result(self, timeout: float | None = None) -> Any:
        return self._portal.call(self._job.result, timeout)

    def refresh(self) -> dict[str, Any]:
        return self._portal.call(self._job.refresh)

    def cancel(self) -> dict[str, Any]:
        return self._portal.call(self._job.cancel)

    def events(self) -> Iterator[JobEvent]:
        """The job's events as a blocking iterator (see :meth:`AsyncJob.events`)."""
        events = self._job.events()
        try:
            while True:
                try:
                    event = self._portal.call(events.__anext__)
                except StopAsyncIteration:
                    return
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                self._portal.call(aclose)
