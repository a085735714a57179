"""Fault injection and the request log, reachable from Python only (never over HTTP).

Faults imitate what sits between a notebook and Metabase in real life (a proxy answering
with an HTML error page, a sign-in page or an echo of the request; a connection dropped,
stalled or dripping mid-body; a body padded with whitespace) and one thing inside it (a
query failing after rows started streaming).  Each rule applies to the next ``n`` requests
that match ``path`` (exact, or a prefix when it ends in ``*``) and ``method``; rules of one
kind are used in the order they were queued; ``clear()`` drops them all.  Every pause is
bounded (:data:`MAX_PAUSE`), so a faulty answer always ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from typing import Any

#: the longest any single fault may hold an answer, in seconds (delay, stall, drip)
MAX_PAUSE = 60.0
#: the most whitespace ``pad_next`` may put in front of one body
MAX_PAD = 1 << 30


def path_matches(pattern: str | None, path: str) -> bool:
    """``None`` matches everything; ``"/api/card/*"`` is a prefix; else exact."""
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


@dataclass
class Request:
    """One request as the sandbox saw it (headers and body are kept out of the repr).

    ``started`` and ``finished`` are ``time.monotonic()`` readings: the request line was
    read, and the last byte of the answer was sent (or the connection given up).
    ``finished`` is ``None`` while the answer is still going out.  Compare them, never
    the wall clock: :meth:`overlaps` says whether two requests were in flight together.
    """

    method: str
    path: str
    query: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    #: the sandbox clock (``srv.clock``) when the request came in
    at: float = 0.0
    #: the faults applied, comma-separated in the order they acted (``"delay,cut"``)
    fault: str | None = None
    #: uncompressed body bytes produced so far, and the largest single write
    bytes_sent: int = 0
    largest_write: int = 0
    #: socket writes that carried body bytes (after gzip): a dripped body shows many
    writes: int = 0
    complete: bool = False
    started: float = 0.0
    finished: float | None = None

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)

    def overlaps(self, other: Request) -> bool:
        """Both were in flight at one moment (an unfinished request is still in flight)."""
        inf = float("inf")
        self_end = inf if self.finished is None else self.finished
        other_end = inf if other.finished is None else other.finished
        return self.started < other_end and other.started < self_end

    def add_fault(self, kind: str) -> None:
        self.fault = kind if self.fault is None else f"{self.fault},{kind}"


@dataclass
class Rule:
    """One queued fault; the fields a kind does not use keep their defaults."""

    kind: str
    remaining: int
    path: str | None
    method: str | None = None
    status: int = 502
    seconds: float = 0.0
    after_bytes: int | None = None
    interval: float = 0.0
    piece: int = 1
    nbytes: int = 0
    gzip: bool | None = None
    after_rows: int = 0
    error: str = ""
    error_type: str = ""


def _pause(seconds: float, name: str = "seconds") -> float:
    if not 0 <= seconds <= MAX_PAUSE:
        raise ValueError(f"{name} must be between 0 and {MAX_PAUSE:g}")
    return float(seconds)


class Faults:
    """Queued faults; ``srv.faults`` of a running sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    # -- what a proxy does instead of forwarding -----------------------------------------
    def fail_next(
        self, n: int = 1, status: int = 502, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests with an nginx-like HTML error page."""
        self._add(Rule("fail", n, path, method, status=status))

    def html_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Answer the next ``n`` matching requests ``200 text/html`` with a single-sign-on
        page (as an SSO proxy does for a request without its cookie); Metabase never sees
        them."""
        self._add(Rule("html", n, path, method))

    def echo_next(
        self, n: int = 1, status: int = 500, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` and a ``text/plain`` body
        that echoes the request: request line, every header (``X-Metabase-Session``,
        ``X-API-Key`` included) and the body (a login's password included), as a broken
        proxy does.  Metabase never sees them."""
        self._add(Rule("echo", n, path, method, status=status))

    # -- what happens to a body on the way ----------------------------------------------
    def cut_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Send headers and part of the body of the next ``n`` matching responses, then
        close the connection."""
        self._add(Rule("cut", n, path, method))

    def delay_next(
        self,
        n: int = 1,
        seconds: float = 2.0,
        *,
        after_bytes: int | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Hold the next ``n`` matching answers for ``seconds`` (real time, at most
        :data:`MAX_PAUSE`).

        Without ``after_bytes`` the pause comes before the answer.  With it, the headers and
        the first ``after_bytes`` body bytes go out (counted as sent: after gzip, without
        chunk framing), then the answer stalls; a shorter body stalls before its last byte
        (``Content-Length``) or before its terminating chunk (chunked)."""
        if after_bytes is not None and after_bytes < 0:
            raise ValueError("after_bytes must be at least 0")
        seconds = _pause(seconds)
        self._add(Rule("delay", n, path, method, seconds=seconds, after_bytes=after_bytes))

    def drip_next(
        self,
        n: int = 1,
        *,
        interval: float = 0.25,
        piece: int = 1,
        max_seconds: float = 5.0,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Send the body of the next ``n`` matching answers ``piece`` bytes at a time with
        ``interval`` seconds between pieces; after ``max_seconds`` (at most
        :data:`MAX_PAUSE`) the rest goes at once, so the answer always ends."""
        if piece < 1:
            raise ValueError("piece must be at least 1")
        rule = Rule("drip", n, path, method, interval=_pause(interval, "interval"), piece=piece)
        rule.seconds = _pause(max_seconds, "max_seconds")
        self._add(rule)

    def pad_next(
        self,
        nbytes: int,
        *,
        n: int = 1,
        gzip: bool | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Put ``nbytes`` of whitespace (newlines) in front of the next ``n`` matching JSON
        answers (other answers do not use the rule up).  A padded answer is sent chunked.
        ``gzip``: ``None`` compresses as the request negotiated, ``True`` always (a small
        download that inflates to a huge body), ``False`` never."""
        if not 1 <= nbytes <= MAX_PAD:
            raise ValueError(f"nbytes must be between 1 and {MAX_PAD}")
        self._add(Rule("pad", n, path, method, nbytes=nbytes, gzip=gzip))

    # -- what Metabase itself does --------------------------------------------------------
    def query_error_next(
        self,
        after_rows: int = 0,
        *,
        n: int = 1,
        error: str = "Error reducing result rows: ERROR: canceling statement due to conflict",
        error_type: str = "invalid-query",
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Make the next ``n`` matching card queries fail mid-stream, as a warehouse does
        while Metabase is reading rows: the answer's status and ``after_rows`` rows are
        already out, then Metabase appends its ``"status": "failed"`` error object to the
        half-written document and completes the body (#60295).  Requests that run no query
        do not use the rule up."""
        if after_rows < 0:
            raise ValueError("after_rows must be at least 0")
        rule = Rule("query_error", n, path, method, after_rows=after_rows, error=error)
        rule.error_type = error_type
        self._add(rule)

    # -- bookkeeping ------------------------------------------------------------------------
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

    def _add(self, rule: Rule) -> None:
        if rule.remaining < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._rules.append(rule)

    def take(self, kind: str, method: str, path: str) -> Rule | None:
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


# ---------------------------------------------------------------------------------------
# the pages a proxy answers with


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


def sign_in_page(path: str) -> bytes:
    """The page a single-sign-on proxy shows a request that lacks its own cookie."""
    back = escape(path, quote=True)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Sign in</title>\n</head>\n<body>\n<h1>Sign in to continue</h1>\n"
        f'<form method="post" action="/oauth2/start?rd={back}">\n'
        '<button type="submit">Sign in with your company account</button>\n'
        "</form>\n</body>\n</html>\n"
    ).encode()


def echo_body(request_line: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A broken proxy's error page: the request as it arrived, secrets and all."""
    lines = [request_line, *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1", "replace") + body
