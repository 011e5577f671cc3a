"""The Celery app of the ``celery`` peer, shared by its worker and the load generator's client.

Redis is both broker and result backend; the one task, ``echo``, returns its argument.
Settings are Celery's defaults except JSON only and quiet logging: the peer is Celery as a
user would first deploy it.
"""

from __future__ import annotations

from typing import Any

from celery import Celery


def echo(x: Any) -> Any:
    return x


def make_app(redis_url: str) -> Celery:
    """A Celery app on ``redis_url`` (broker and backend) with the ``echo`` task registered."""
    app = Celery("perfgate_bench", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # results are read once, right away; do not let a long run fill Redis
        result_expires=300,
    )
    app.task(name="echo")(echo)
    return app
