"""An embedded Metabase-compatible server with Massive demo data, for tests and demos.

    from massive_magic import sandbox
    with sandbox.start(port=0) as srv:
        srv.url, srv.username, srv.password, srv.api_key
        srv.faults.fail_next()          # the next request gets a 502 page from "nginx"
        srv.faults.delay_next(seconds=1, after_bytes=100, path="/api/card/*")  # stalls
        srv.requests("POST", "/api/card/*")   # the log: counts, order (started/finished)

It answers the endpoints the client uses exactly as ``docs/metabase-api.md``
describes Metabase v0.56 (status codes, body shapes, row caps, value formats, login
throttling, streamed query answers that close the connection, errors appended to a
half-written body) and keeps a log of every request so tests count round trips and
check order and overlap.  Faults (:mod:`.faults`), the clock and helpers are reachable
from Python only, never over HTTP.

Modules: ``handle`` (the :class:`Sandbox`), ``transport`` (HTTP, framing, gzip, faults),
``endpoints`` (routing and handlers), ``queries`` (running a card), ``streams`` (row
writers), ``responses``, ``faults``, ``catalog``, ``values``, ``auth``, ``demo``.
"""

from __future__ import annotations

from . import demo
from .faults import Request
from .handle import Sandbox

__all__ = ["Request", "Sandbox", "demo", "start"]


def start(port: int = 0, host: str = "127.0.0.1") -> Sandbox:
    """Start a sandbox in a background (daemon) thread and return its handle.

    ``port=0`` picks a free port; use the handle as a context manager or call ``.stop()``.
    """
    return Sandbox(host, port).start()
