"""Fault injection and the request log, reachable from Python only (never over HTTP).

Faults imitate what sits between a notebook and Metabase in real life: a proxy answering
with an HTML error page, a connection dropped mid-body, a slow answer.  Each rule applies
to the next ``n`` requests that match ``path`` (exact, or a prefix when it ends in ``*``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


def path_matches(pattern: str | None, path: str) -> bool:
    """``None`` matches everything; ``"/api/card/*"`` is a prefix; else exact."""
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


@dataclass
class Request:
    """One request as the sandbox saw it (headers and body are kept out of the repr)."""

    method: str
    path: str
    query: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    at: float = 0.0
    fault: str | None = None
    #: uncompressed body bytes produced so far, and the largest single write
    bytes_sent: int = 0
    largest_write: int = 0
    complete: bool = False

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)


@dataclass
class _Rule:
    kind: str
    remaining: int
    path: str | None
    status: int = 502
    seconds: float = 0.0
    method: str | None = None


class Faults:
    """Queued faults; ``srv.faults`` of a running sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def fail_next(
        self, n: int = 1, status: int = 502, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests with an nginx-like HTML error page."""
        self._add(_Rule("fail", n, path, status=status, method=method))

    def cut_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Send headers and part of the body of the next ``n`` matching responses, then
        close the connection."""
        self._add(_Rule("cut", n, path, method=method))

    def delay_next(
        self,
        n: int = 1,
        seconds: float = 2.0,
        *,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Hold the next ``n`` matching answers for ``seconds`` (real time) before replying."""
        self._add(_Rule("delay", n, path, seconds=seconds, method=method))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> list[dict[str, Any]]:
        """What is still queued (for assertions and debugging)."""
        with self._lock:
            return [
                {"kind": r.kind, "remaining": r.remaining, "path": r.path, "method": r.method}
                for r in self._rules
            ]

    def _add(self, rule: _Rule) -> None:
        if rule.remaining < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._rules.append(rule)

    def take(self, kind: str, method: str, path: str) -> _Rule | None:
        """Consume one use of the first matching rule of ``kind``."""
        with self._lock:
            for rule in self._rules:
                if (
                    rule.kind == kind
                    and path_matches(rule.path, path)
                    and (rule.method is None or rule.method.upper() == method)
                ):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None


def error_page(status: int) -> bytes:
    """The page nginx sends when its upstream fails."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    title = f"{status} {reason}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
