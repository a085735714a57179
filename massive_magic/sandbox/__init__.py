"""An embedded Metabase-compatible server with Massive demo data, for tests and demos.

    from massive_magic import sandbox
    with sandbox.start(port=0) as srv:
        srv.url, srv.username, srv.password, srv.api_key
        srv.faults.fail_next()          # the next request gets a 502 page from "nginx"

It answers the endpoints the client uses exactly as ``docs/metabase-api.md``
describes Metabase v0.56 (status codes, body shapes, row caps, value formats, login
throttling) and keeps a log of every request so tests can count round trips.
Faults, the clock and helpers are reachable from Python only, never over HTTP.
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
