"""The HTTP face: a Quart-trio app (``app.py``) served by Hypercorn's trio worker
(``server.py``), with thin routes (``jobs.py``, ``channels.py``, ``events.py``) over the
services the supervisor builds, and the edge around them (``edge.py``, ``head_limit.py``,
``draining.py``, ``problems.py``).

Nothing is re-exported here: importing :mod:`perfgate.http` loads no web framework.
"""
