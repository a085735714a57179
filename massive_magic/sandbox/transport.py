"""The sandbox's HTTP layer: server, request handler, body framing, gzip and the faults.

Stdlib only (``http.server``), one daemon thread per connection, HTTP/1.1.  Complete
answers carry ``Content-Length`` and keep the connection alive; Metabase's streaming
answers go out chunked, one write per batch, and end with ``Connection: close``.  Every
fault of :mod:`.faults` except ``query_error`` (which lives in the query) acts here.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .catalog import BadRequest, InvalidParameter
from .endpoints import Api
from .faults import Request, Rule, echo_body, error_page, sign_in_page
from .responses import Response, json_answer, text_answer, throwable

if TYPE_CHECKING:
    from .handle import Sandbox

_PAD_PIECE = 1 << 20


class _Cut(Exception):
    """Raised inside a response writer once a cut fault has closed the connection."""


class Server(ThreadingHTTPServer):
    """Serves one :class:`~.handle.Sandbox`; tracks connections so ``stop`` closes them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        #: set by ``close_all``: wakes every fault pause so stopping never waits on one
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, sock: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(sock)

    def close_all(self) -> None:
        self.stopping.set()
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client hang-ups are normal here; keep stderr quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate sends; with Nagle's algorithm on, the client's
    # delayed ACK stalls every keep-alive answer by ~40 ms. Metabase's Jetty sets TCP_NODELAY.
    disable_nagle_algorithm = True
    server_version = "Jetty(11.0.24)"
    sys_version = ""
    server: Server

    # -- plumbing --------------------------------------------------------------------------
    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def parse_request(self) -> bool:
        """Called as soon as the request line is read: the request's start time."""
        self.started = time.monotonic()
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox keeps its own log (``srv.log``)."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _pause(self, seconds: float) -> None:
        self.server.stopping.wait(seconds)

    # -- one request -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        sb = self.server.sandbox
        self._stall: Rule | None = None
        parts = urlsplit(self.path)
        body = self._read_body()
        rec = Request(
            self.command,
            parts.path,
            parts.query,
            headers=dict(self.headers.items()),
            body=b"" if parts.path == "/api/session" else body,
            at=sb.clock.now(),
            started=self.started,
        )
        sb._record(rec)
        try:
            response = self._proxy_answer(rec, body)
            proxied = response is not None
            if response is None:
                response = self._api_answer(rec, body)
            self._send(rec, response, proxied=proxied)
        finally:
            if rec.finished is None:  # given up, or cut
                rec.finished = time.monotonic()

    def _take(self, kind: str, rec: Request) -> Rule | None:
        rule = self.server.sandbox.faults.take(kind, rec.method, rec.path)
        if rule is not None:
            rec.add_fault(kind)
        return rule

    def _proxy_answer(self, rec: Request, body: bytes) -> Response | None:
        """What a proxy in front of Metabase answers instead of forwarding, if anything."""
        faults = self.server.sandbox.faults
        delay = faults.take("delay", rec.method, rec.path)
        if delay is not None:
            self._stall = delay
            if delay.after_bytes is None:
                rec.add_fault("delay")
                self._pause(delay.seconds)
        fail = self._take("fail", rec)
        if fail is not None:
            return Response(
                fail.status, error_page(fail.status), "text/html", [("Server", "nginx/1.24.0")]
            )
        if self._take("html", rec) is not None:
            return Response(200, sign_in_page(rec.path), "text/html; charset=utf-8")
        echo = self._take("echo", rec)
        if echo is not None:
            line = self.requestline
            return Response(echo.status, echo_body(line, self.headers.items(), body), "text/plain")
        return None

    def _api_answer(self, rec: Request, body: bytes) -> Response:
        """Metabase's own answer; errors raised before any byte is sent become bodies."""
        try:
            return Api(self.server.sandbox, rec, self.headers, self.client_address[0], body).route()
        except BadRequest as exc:
            if exc.errors:
                return json_answer(exc.status, {"errors": exc.errors})
            return text_answer(exc.status, exc.message)
        except InvalidParameter as exc:
            return json_answer(500, throwable(exc.message, exc.data))
        except Exception as exc:  # a sandbox bug: answer like Metabase's E4, keep serving
            return json_answer(500, throwable(f"{type(exc).__name__}: {exc}", {}))

    def _read_body(self) -> bytes:
        """The request body, sized by Content-Length or sent with chunked encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- sending ---------------------------------------------------------------------------
    def _send(self, rec: Request, resp: Response, *, proxied: bool) -> None:
        """Headers, then the body through :class:`_Wire` with this request's body faults."""
        has_body = bool(resp.body) or resp.chunks is not None
        chunks = resp.chunks
        if proxied:  # a proxy's own page: plain, and the body faults are left queued
            gz, cut, drip = False, False, None
        else:
            gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
            pad = self._take("pad", rec) if resp.is_json and has_body else None
            if pad is not None:
                gz = gz if pad.gzip is None else pad.gzip
                chunks = chain(_whitespace(pad.nbytes), [resp.body] if chunks is None else chunks)
            cut = has_body and self._take("cut", rec) is not None
            drip = self._take("drip", rec)
        if self._stall is not None and self._stall.after_bytes is not None:
            rec.add_fault("stall")
        rec.status = resp.status
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        if gz and has_body:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        if resp.streamed:
            self.send_header("X-Accel-Buffering", "no")
            self.send_header("Connection", "close")  # sets self.close_connection
        wire = _Wire(self, rec, self._stall, drip)
        try:
            if chunks is None:
                self._send_body(rec, wire, resp.body, gz, cut)
            else:
                self._send_chunks(rec, wire, chunks, gz, cut)
        except _Cut:
            rec.complete = False  # even when the cut left only the last byte out
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            rec.complete = False
            self.close_connection = True
        except Exception:
            # A bug after the headers went out: the body stops short (no terminating
            # chunk) and the connection is dropped.
            rec.complete = False
            self.close_connection = True

    def _send_body(self, rec: Request, wire: _Wire, body: bytes, gz: bool, cut: bool) -> None:
        rec.bytes_sent = rec.largest_write = len(body)
        payload = gzip.compress(body, compresslevel=1, mtime=0) if gz and body else body
        self.send_header("Content-Length", str(len(payload)))
        wire.start(len(payload))
        if not payload and not wire.stalling:
            wire.last_byte()
        self.end_headers()
        if cut:
            wire.write(payload[: max(1, len(payload) // 2)])
            self._hang_up()
        wire.write(payload)
        wire.end()
        wire.last_byte()  # an empty body that stalled after its headers
        self.wfile.flush()

    def _send_chunks(
        self, rec: Request, wire: _Wire, chunks: Iterable[bytes], gz: bool, cut: bool
    ) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        wire.start(None)
        comp = zlib.compressobj(1, zlib.DEFLATED, 31) if gz else None
        written = 0
        for chunk in chunks:
            if not chunk:
                continue
            rec.bytes_sent += len(chunk)
            rec.largest_write = max(rec.largest_write, len(chunk))
            data = comp.compress(chunk) + comp.flush(zlib.Z_SYNC_FLUSH) if comp else chunk
            if cut and written:
                # one chunk already out: announce the next, send half, hang up
                self.wfile.write(b"%x\r\n" % len(data))
                wire.write(data[: len(data) // 2])
                self._hang_up()
            self.wfile.write(b"%x\r\n" % len(data))
            wire.write(data)
            self.wfile.write(b"\r\n")
            self.wfile.flush()
            written += 1
        if cut:
            self._hang_up()
        tail = comp.flush() if comp else b""
        if tail:
            self.wfile.write(b"%x\r\n" % len(tail))
            wire.write(tail)
            self.wfile.write(b"\r\n")
        wire.end()
        wire.last_byte()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _hang_up(self) -> None:
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Cut()


class _Wire:
    """Body bytes on their way to the socket (after gzip, without chunk framing), paced
    by the ``delay_next(after_bytes=...)`` stall and the ``drip_next`` fault."""

    def __init__(
        self, handler: _Handler, rec: Request, stall: Rule | None, drip: Rule | None
    ) -> None:
        self._h = handler
        self._rec = rec
        self._stall_at = stall.after_bytes if stall is not None else None
        self._stall_for = stall.seconds if stall is not None else 0.0
        self._drip = drip
        self._drip_until = 0.0
        self._length: int | None = None
        self.sent = 0

    @property
    def stalling(self) -> bool:
        return self._stall_at is not None

    def last_byte(self) -> None:
        """The answer's last bytes go out now: the log says so first, so a client that has
        read the whole answer always finds its request ``complete`` and ``finished``."""
        if self._rec.finished is None:
            self._rec.complete = True
            self._rec.finished = time.monotonic()

    def start(self, length: int | None) -> None:
        """Headers are going out; ``length`` is the whole body's size when it is known."""
        self._length = length
        if self._stall_at is not None and length is not None:
            self._stall_at = min(self._stall_at, max(0, length - 1))
        if self._drip is not None:
            self._drip_until = time.monotonic() + self._drip.seconds

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._maybe_stall()
            n = len(view)
            if self._stall_at is not None:
                n = min(n, self._stall_at - self.sent)
            if self._drip is not None and time.monotonic() < self._drip_until:
                if self.sent:
                    self._h.wfile.flush()
                    self._h._pause(min(self._drip.interval, self._drip_until - time.monotonic()))
                n = min(n, self._drip.piece)
            if self._length is not None and self.sent + n == self._length:
                self.last_byte()
            self._rec.writes += 1  # counted first, like ``last_byte``
            self.sent += n
            self._h.wfile.write(view[:n])
            view = view[n:]
        self._maybe_stall()

    def end(self) -> None:
        """Before the body's last framing: a stall that has not happened yet happens now."""
        if self._stall_at is not None:
            self._stall_at = self.sent
            self._maybe_stall()

    def _maybe_stall(self) -> None:
        if self._stall_at is not None and self.sent >= self._stall_at:
            self._stall_at = None
            self._h.wfile.flush()
            self._h._pause(self._stall_for)


def _whitespace(nbytes: int) -> Iterator[bytes]:
    """``nbytes`` newlines in pieces of at most 1 MiB (a padding fault's first chunks)."""
    while nbytes > 0:
        size = min(nbytes, _PAD_PIECE)
        yield b"\n" * size
        nbytes -= size
