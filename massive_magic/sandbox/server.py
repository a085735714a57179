"""The Metabase-compatible HTTP server and the handle tests drive it with.

Stdlib only (``http.server``), one daemon thread per connection, HTTP/1.1 keep-alive.
Large answers are streamed with chunked transfer encoding, one batch of rows formatted
and serialised at a time, so a request never holds more than one batch of its payload.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from . import demo
from .auth import Accounts, Clock, User
from .catalog import (
    BadRequest,
    Card,
    Dashboard,
    Dashcard,
    InvalidParameter,
    QueryError,
    RunContext,
    Tag,
    dashboard_card_parameters,
    resolve_card_parameters,
)
from .faults import Faults, Request, error_page, path_matches
from .values import (
    STYLE_API,
    STYLE_EXPORT,
    STYLE_FORMATTED,
    Column,
    Table,
    column,
    rows_of,
    zone,
)

QUERY_ROW_LIMIT = 2000
EXPORT_ROW_LIMIT = 1_048_575
BATCH_ROWS = 20_000
VERSION = {
    "tag": "v0.56.3",
    "date": "2025-08-20",
    "hash": "6d4a3b1",
    "branch": "release-x.56.x",
}
NOT_FOUND = "Not found."
FORBIDDEN = "You don't have permissions to do that."
UNAUTHENTICATED = "Unauthenticated"
JSON_TYPE = "application/json; charset=utf-8"


class _Cut(Exception):
    """Raised inside a response writer once a cut fault has closed the connection."""


@dataclass
class Response:
    """A complete answer (``body``) or a streamed one (``chunks``)."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[bytes] | None = None


def _json(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(obj), JSON_TYPE, headers or [])


def _text(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain")


class Sandbox:
    """A running sandbox: ``srv.url``, demo credentials, clock, faults and the request log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock = Clock()
        self.faults = Faults()
        self.accounts = Accounts(self.clock)
        self.log: list[Request] = []
        self._log_lock = threading.Lock()
        self.report_timezone = "Europe/Berlin"
        #: Metabase's ``unaggregated-query-row-limit`` (``/query``) and download row limit
        self.query_row_limit = QUERY_ROW_LIMIT
        self.export_row_limit = EXPORT_ROW_LIMIT
        self.cards: dict[int, Card] = demo.build_cards()
        self.dashboards: dict[int, Dashboard] = demo.build_dashboards()
        self._next_card_id = 900
        demo_user = self.accounts.add_user(
            demo.DEMO_USERNAME, demo.DEMO_PASSWORD, first_name="Demo", last_name="Partner"
        )
        self.accounts.add_user(
            demo.ADMIN_USERNAME,
            "admin-" + demo.DEMO_PASSWORD,
            first_name="Massive",
            last_name="Admin",
            superuser=True,
        )
        self.accounts.api_keys[demo.DEMO_API_KEY] = demo_user
        self.username = demo.DEMO_USERNAME
        self.password = demo.DEMO_PASSWORD
        self.api_key = demo.DEMO_API_KEY
        self._httpd = _Server((host, port), _Handler)
        self._httpd.sandbox = self
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"massive-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (``python -m massive_magic.sandbox``)."""
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        self._httpd.shutdown()
        self._httpd.close_all()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Sandbox {self.url} user={self.username}>"

    # -- settings --------------------------------------------------------------------------
    @property
    def report_timezone(self) -> str:
        """Metabase's report time zone: offsets of dates and datetimes in query results."""
        return self._report_timezone

    @report_timezone.setter
    def report_timezone(self, name: str) -> None:
        zone(name)  # raises ZoneInfoNotFoundError for an unknown name, here and not later
        self._report_timezone = name

    @property
    def max_session_age(self) -> float:
        """Seconds a session lives after login (Metabase ``MAX_SESSION_AGE``; default 14 d)."""
        return self.accounts.max_session_age

    @max_session_age.setter
    def max_session_age(self, seconds: float) -> None:
        self.accounts.max_session_age = float(seconds)

    # -- test helpers ----------------------------------------------------------------------
    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen so far matching ``method`` and ``path`` (exact, or prefix with ``*``)."""
        with self._log_lock:
            return sum(
                1
                for r in self.log
                if (method is None or r.method == method.upper()) and path_matches(path, r.path)
            )

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The matching log records, oldest first."""
        with self._log_lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method.upper()) and path_matches(path, r.path)
            ]

    def reset_log(self) -> None:
        with self._log_lock:
            self.log.clear()

    def add_user(
        self,
        email: str,
        password: str,
        *,
        first_name: str = "",
        last_name: str = "",
        superuser: bool = False,
    ) -> User:
        """Create another login (e.g. to test throttling without locking the demo user)."""
        return self.accounts.add_user(
            email, password, first_name=first_name, last_name=last_name, superuser=superuser
        )

    def add_api_key(self, key: str, email: str | None = None) -> None:
        """Make ``key`` (must start with ``mb_``) act as ``email`` (default: the demo user)."""
        self.accounts.api_keys[key] = self.accounts.users[(email or self.username).lower()]

    def add_card(
        self,
        name: str,
        columns: list[dict[str, Any] | tuple[str, str]],
        rows: list[list[Any]] | None = None,
        *,
        card_id: int | None = None,
        description: str | None = None,
        parameters: list[dict[str, Any]] | None = None,
        run: Callable[[dict[str, Any]], list[list[Any]]] | None = None,
        error: str | None = None,
        error_type: str = "invalid-query",
        restricted: bool = False,
    ) -> int:
        """Serve a new native card and return its id.

        ``columns``: ``(name, base_type)`` pairs or dicts with ``name``, ``base_type`` and
        optional ``display_name``, ``database_type``, ``semantic_type``.  ``rows``: Python
        values (``date``, ``datetime`` (aware for ``*WithTZ`` types), ``time``, numbers,
        str, bool, None).  ``parameters``: dicts with ``name`` and ``type`` (template tag
        type: text/number/date/dimension) and optional ``display_name``, ``widget_type``,
        ``default``, ``required``, ``values``.  ``run(values)`` may compute rows from the
        resolved parameter values instead of ``rows``; ``error`` makes every run fail.
        """
        cid = card_id if card_id is not None else self._new_card_id()
        specs = [_column_spec(c) for c in columns]
        tags = [
            Tag(
                cid,
                p["name"],
                p.get("display_name") or p["name"].replace("_", " ").capitalize(),
                p.get("type", "text"),
                widget_type=p.get("widget_type"),
                default=p.get("default"),
                required=bool(p.get("required", False)),
                values=p.get("values"),
                multi=bool(p.get("multi", False)),
            )
            for p in parameters or []
        ]

        def build(data_rows: list[list[Any]]) -> Table:
            cols = [
                column(s["name"], s["kind"], [r[i] for r in data_rows], **s["meta"])
                for i, s in enumerate(specs)
            ]
            return Table(cols, len(data_rows))

        fixed = build(rows or [])

        def runner(values: dict[str, Any], ctx: RunContext) -> Table:
            if error is not None:
                raise QueryError(error, error_type)
            return build(run(values)) if run is not None else fixed

        self.cards[cid] = Card(
            cid,
            name,
            f"SELECT * FROM sandbox_card_{cid}",
            build([]).columns,
            runner,
            tags=tags,
            description=description,
            restricted=restricted,
        )
        return cid

    def _new_card_id(self) -> int:
        while self._next_card_id in self.cards:
            self._next_card_id += 1
        self._next_card_id += 1
        return self._next_card_id - 1

    def expire_sessions(self) -> None:
        """Forget every session (as if an admin signed everyone out)."""
        self.accounts.expire_sessions()

    def reset(self) -> None:
        """Between tests: faults, log, clock, throttles, settings and extra cards/users."""
        self.faults.clear()
        self.reset_log()
        self.clock.reset()
        self.accounts.reset_throttles()
        self.accounts.max_session_age = 14 * 24 * 3600.0
        self.report_timezone = "Europe/Berlin"
        self.query_row_limit = QUERY_ROW_LIMIT
        self.export_row_limit = EXPORT_ROW_LIMIT
        # restore the demo catalogue in place (tests hold references to these dicts)
        self.cards.clear()
        self.cards.update(demo.build_cards())
        self.dashboards.clear()
        self.dashboards.update(demo.build_dashboards())
        self._next_card_id = 900
        demo_users = {demo.DEMO_USERNAME, demo.ADMIN_USERNAME}
        for email in [e for e in self.accounts.users if e not in demo_users]:
            del self.accounts.users[email]
        for key in [k for k in self.accounts.api_keys if k != demo.DEMO_API_KEY]:
            del self.accounts.api_keys[key]

    def _record(self, request: Request) -> None:
        with self._log_lock:
            self.log.append(request)


def _column_spec(spec: dict[str, Any] | tuple[str, str]) -> dict[str, Any]:
    from .values import BASE_TYPE_KINDS

    if isinstance(spec, tuple):
        spec = {"name": spec[0], "base_type": spec[1]}
    base_type = spec.get("base_type", "type/Text")
    kind = spec.get("kind") or BASE_TYPE_KINDS.get(base_type, "other")
    meta = {
        "display_name": spec.get("display_name", ""),
        "base_type": base_type,
        "database_type": spec.get("database_type", ""),
        "semantic_type": spec.get("semantic_type"),
    }
    return {"name": spec["name"], "kind": kind, "meta": meta}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, sock: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(sock)

    def close_all(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client hang-ups are normal here; keep stderr quiet."""


# ---------------------------------------------------------------------------------------
# the request handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate sends; with Nagle's algorithm on, the client's
    # delayed ACK stalls every keep-alive answer by ~40 ms. Metabase's Jetty sets TCP_NODELAY.
    disable_nagle_algorithm = True
    server_version = "Jetty(11.0.24)"
    sys_version = ""
    server: _Server

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

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def _dispatch(self) -> None:
        sb = self.sandbox
        parts = urlsplit(self.path)
        body = self._read_body()
        rec = Request(
            self.command,
            parts.path,
            parts.query,
            headers=dict(self.headers.items()),
            body=b"" if parts.path == "/api/session" else body,
            at=sb.clock.now(),
        )
        delay = sb.faults.take("delay", self.command, parts.path)
        if delay is not None:
            time.sleep(delay.seconds)
        fail = sb.faults.take("fail", self.command, parts.path)
        if fail is not None:
            rec.fault = "fail"
            page = error_page(fail.status)
            self._send(
                rec, Response(fail.status, page, "text/html", [("Server", "nginx/1.24.0")]), False
            )
            return
        try:
            response = _Api(self, sb, rec, parts.path, body).route()
        except BadRequest as exc:
            if exc.errors:
                response = _json(exc.status, {"errors": exc.errors})
            else:
                response = _text(exc.status, exc.message)
        except InvalidParameter as exc:
            response = _json(500, _throwable(exc.message, exc.data))
        except Exception as exc:  # a sandbox bug: answer like Metabase's E4, keep serving
            response = _json(500, _throwable(f"{type(exc).__name__}: {exc}", {}))
        cut = bool(response.body or response.chunks) and (
            sb.faults.take("cut", self.command, parts.path) is not None
        )
        if cut:
            rec.fault = "cut"
        self._send(rec, response, cut)

    def _read_body(self) -> bytes:
        """The request body, sized by Content-Length or sent with chunked encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
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

    def _send(self, rec: Request, resp: Response, cut: bool) -> None:
        gz = "gzip" in (self.headers.get("Accept-Encoding") or "") and rec.fault != "fail"
        rec.status = resp.status
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        if gz and (resp.body or resp.chunks is not None):
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        self.sandbox._record(rec)
        try:
            if resp.chunks is None:
                self._send_body(rec, resp.body, gz, cut)
            else:
                self._send_chunks(rec, resp.chunks, gz, cut)
            rec.complete = True
        except _Cut:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception:
            # A failure after the headers went out: like Metabase, the client sees a body
            # that stops short (no terminating chunk); the connection is dropped.
            self.close_connection = True

    def _send_body(self, rec: Request, body: bytes, gz: bool, cut: bool) -> None:
        rec.bytes_sent = rec.largest_write = len(body)
        payload = gzip.compress(body, compresslevel=1, mtime=0) if gz and body else body
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut:
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self._hang_up()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_chunks(self, rec: Request, chunks: Iterable[bytes], gz: bool, cut: bool) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
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
                self.wfile.write(b"%x\r\n" % len(data) + data[: len(data) // 2])
                self._hang_up()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            written += 1
        if cut:
            self._hang_up()
        tail = comp.flush() if comp else b""
        if tail:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _hang_up(self) -> None:
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Cut()


def _throwable(message: str, data: dict[str, Any]) -> dict[str, Any]:
    """Clojure's ``Throwable->map`` plus ``message`` and the ex-data, as Metabase's E4 body."""
    trace = [
        ["metabase.query_processor.card$validate_card_parameters", "invokeStatic", "card.clj", 238],
        ["metabase.query_processor.card$process_query_for_card", "invokeStatic", "card.clj", 305],
        ["metabase.queries.api.card$run_query_for_card_async", "invokeStatic", "card.clj", 812],
    ]
    return {
        "via": [
            {
                "type": "clojure.lang.ExceptionInfo",
                "message": message,
                "data": data,
                "at": trace[0],
            }
        ],
        "trace": trace,
        "cause": message,
        "data": data,
        "message": message,
        **data,
    }


# ---------------------------------------------------------------------------------------
# endpoints


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("POST", r"/api/session", "login"),
        ("DELETE", r"/api/session", "logout"),
        ("GET", r"/api/session/properties", "properties"),
        ("GET", r"/api/health", "health"),
        ("GET", r"/api/user/current", "current_user"),
        ("GET", r"/api/card/?", "list_cards"),
        ("GET", r"/api/card/([^/]+)", "get_card"),
        ("POST", r"/api/card/([^/]+)/query", "query_card"),
        ("POST", r"/api/card/([^/]+)/query/([^/]+)", "export_card"),
        ("GET", r"/api/dashboard/([^/]+)", "get_dashboard"),
        ("POST", r"/api/dashboard/([^/]+)/dashcard/([^/]+)/card/([^/]+)/query", "query_dashcard"),
        (
            "POST",
            r"/api/dashboard/([^/]+)/dashcard/([^/]+)/card/([^/]+)/query/([^/]+)",
            "export_dashcard",
        ),
    ]
]
_PUBLIC = {"login", "logout", "properties", "health"}


class _Api:
    """One request's endpoint logic."""

    def __init__(self, handler: _Handler, sb: Sandbox, rec: Request, path: str, body: bytes):
        self.h = handler
        self.sb = sb
        self.rec = rec
        self.path = path
        self.body = body
        self.user: User | None = None

    # -- request parsing -------------------------------------------------------------------
    def _cookie_token(self) -> str | None:
        raw = self.h.headers.get("Cookie")
        if not raw:
            return None
        jar = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:
            return None
        morsel = jar.get("metabase.SESSION")
        return morsel.value if morsel else None

    def _session_token(self) -> str | None:
        """The ``metabase.SESSION`` cookie wins over ``X-Metabase-Session`` (as Metabase)."""
        return self._cookie_token() or self.h.headers.get("X-Metabase-Session")

    def _authenticate(self) -> User | None:
        user = self.sb.accounts.session_user(self._session_token())
        if user is None:
            key = self.h.headers.get("X-API-Key")
            if key and key.startswith("mb_"):
                user = self.sb.accounts.api_keys.get(key)
        return user

    def _form(self) -> dict[str, Any]:
        """The request body as a dict: JSON object or url-encoded form (never the URL)."""
        if not self.body.strip():
            return {}
        ctype = (self.h.headers.get("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" in ctype:
            form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            return {k: v[-1] for k, v in form.items()}
        try:
            parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise BadRequest(400, "Malformed JSON in request body.") from None
        if not isinstance(parsed, dict):
            raise BadRequest(400, "Request body must be a JSON object.")
        return parsed

    def _parameters(self, form: dict[str, Any]) -> list[Any]:
        params = form.get("parameters")
        if params is None or params == "":
            return []
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except ValueError:
                raise _errors400("parameters", "value must be a valid JSON string.") from None
        if params is None:
            return []
        if not isinstance(params, list):
            raise _errors400("parameters", "nullable sequence of parameter must be an array.")
        return params

    @staticmethod
    def _bool(form: dict[str, Any], key: str, default: bool = False) -> bool:
        value = form.get(key, default)
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise _errors400(key, "value must be a valid boolean string ('true' or 'false').")
            return value.lower() == "true"
        return bool(value)

    # -- routing ---------------------------------------------------------------------------
    def route(self) -> Response:
        method = self.h.command
        allowed_elsewhere = False
        for m, pattern, name in _ROUTES:
            match = pattern.fullmatch(self.path)
            if not match:
                continue
            if m != method:
                allowed_elsewhere = True
                continue
            if name not in _PUBLIC:
                self.user = self._authenticate()
                if self.user is None:
                    return _text(401, UNAUTHENTICATED)
            return getattr(self, name)(*match.groups())
        if allowed_elsewhere or self.path.startswith("/api/"):
            return _text(404, "API endpoint does not exist.")
        return _text(404, NOT_FOUND)

    # -- session ---------------------------------------------------------------------------
    def login(self) -> Response:
        form = self._form()
        username, password = form.get("username"), form.get("password")
        for key, value in (("username", username), ("password", password)):
            if not isinstance(value, str) or not value.strip():
                return _json(400, {"errors": {key: "value must be a non-blank string."}})
        forwarded = self.h.headers.get("X-Forwarded-For")
        address = forwarded.split(",")[-1].strip() if forwarded else self.h.client_address[0]
        token, throttled = self.sb.accounts.login(str(username), str(password), address)
        if throttled:
            return _json(401, {"errors": {"username": throttled}})
        if token is None:
            return _json(401, {"errors": {"password": "did not match stored password"}})
        cookie = f"metabase.SESSION={token}; HttpOnly; Path=/; SameSite=Lax"
        if form.get("remember") is True:
            cookie += f"; Max-Age={int(self.sb.max_session_age)}"
        return _json(
            200,
            {"id": token},
            [
                ("Set-Cookie", cookie),
                ("Set-Cookie", "metabase.TIMEOUT=alive; Path=/; SameSite=Lax"),
            ],
        )

    def logout(self) -> Response:
        if not self.sb.accounts.logout(self._session_token()):
            return _text(404, NOT_FOUND)
        gone = "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        return Response(
            204,
            b"",
            "text/plain",
            [
                ("Set-Cookie", f"metabase.SESSION=; {gone}"),
                ("Set-Cookie", f"metabase.TIMEOUT=; {gone}"),
                ("Set-Cookie", f"metabase.EMBEDDED_SESSION=; {gone}"),
            ],
        )

    def properties(self) -> Response:
        return _json(
            200,
            {
                "version": VERSION,
                "site-name": "Massive partner reporting (sandbox)",
                "site-url": self.sb.url,
                "site-locale": "en",
                "has-user-setup": True,
                "enable-password-login": True,
                "ldap-enabled": False,
                "google-auth-enabled": False,
                "session-cookies": None,
                "anon-tracking-enabled": False,
                "report-timezone-short": _short_tz(self.sb.report_timezone),
                "report-timezone-long": self.sb.report_timezone,
                "token-features": {},
                "engines": {},
            },
        )

    def health(self) -> Response:
        return _json(200, {"status": "ok"})

    def current_user(self) -> Response:
        assert self.user is not None
        return _json(200, self.user.describe())

    # -- cards -----------------------------------------------------------------------------
    def _card(self, raw_id: str) -> Card:
        if not raw_id.isdigit() or int(raw_id) <= 0:
            raise _errors400("id", "value must be an integer greater than zero.")
        card = self.sb.cards.get(int(raw_id))
        if card is None:
            raise BadRequest(404, NOT_FOUND)
        assert self.user is not None
        if card.restricted and not self.user.superuser:
            raise BadRequest(403, FORBIDDEN)
        return card

    def _describe(self, card: Card) -> dict[str, Any]:
        assert self.user is not None
        return card.describe(can_write=self.user.superuser)

    def list_cards(self) -> Response:
        assert self.user is not None
        query = parse_qs(urlsplit(self.h.path).query)
        mode = query.get("f", ["all"])[-1]
        if mode in ("database", "table", "using_model", "using_segment") and not query.get(
            "model_id"
        ):
            return _text(400, f"model_id is a required parameter when filter mode is '{mode}'")
        visible = [c for c in self.sb.cards.values() if self.user.superuser or not c.restricted]
        if mode in ("mine", "bookmarked", "archived", "database", "table"):
            visible = []
        creator = {
            "id": 1,
            "email": "analytics@massive.example",
            "first_name": "Massive",
            "last_name": "Analytics",
            "common_name": "Massive Analytics",
        }
        out = [
            {**self._describe(c), "creator": creator}
            for c in sorted(visible, key=lambda c: c.name.lower())
        ]
        return _json(200, out)

    def get_card(self, raw_id: str) -> Response:
        return _json(200, self._describe(self._card(raw_id)))

    def query_card(self, raw_id: str) -> Response:
        card = self._card(raw_id)
        form = self._form()
        params = self._parameters(form)
        return self._run(card, params, "query", form, context="question")

    def export_card(self, raw_id: str, fmt: str) -> Response:
        card = self._card(raw_id)
        if fmt not in ("api", "json", "csv", "xlsx"):
            raise _errors400("export-format", 'value must be one of: "api", "csv", "json", "xlsx".')
        if fmt == "xlsx":
            return _text(400, "xlsx exports are not supported by the sandbox.")
        form = self._form()
        params = self._parameters(form)
        return self._run(card, params, fmt, form, context="question")

    # -- dashboards ------------------------------------------------------------------------
    def _dashboard(self, raw_id: str) -> Dashboard:
        if not raw_id.isdigit() or int(raw_id) <= 0:
            raise _errors400("id", "value must be an integer greater than zero.")
        dash = self.sb.dashboards.get(int(raw_id))
        if dash is None:
            raise BadRequest(404, NOT_FOUND)
        return dash

    def get_dashboard(self, raw_id: str) -> Response:
        dash = self._dashboard(raw_id)
        stamp = "2024-05-01T08:45:00.120Z"
        dashcards = []
        for dc in dash.dashcards:
            card = self.sb.cards.get(dc.card_id) if dc.card_id is not None else None
            viz: dict[str, Any] = {}
            if dc.card_id is None:
                viz = {
                    "virtual_card": {
                        "name": None,
                        "display": "text",
                        "visualization_settings": {},
                        "dataset_query": {},
                        "archived": False,
                    },
                    "text": dc.text or "",
                }
            dashcards.append(
                {
                    "id": dc.id,
                    "dashboard_id": dash.id,
                    "dashboard_tab_id": None,
                    "card_id": dc.card_id,
                    "card": self._describe(card) if card else {"query_average_duration": None},
                    "parameter_mappings": [
                        {
                            "parameter_id": pid,
                            "card_id": dc.card_id,
                            "target": card.tag(tag).target if card and card.tag(tag) else None,
                        }
                        for pid, tag in dc.mappings.items()
                    ],
                    "series": [],
                    "row": dc.row,
                    "col": dc.col,
                    "size_x": dc.size_x,
                    "size_y": dc.size_y,
                    "visualization_settings": viz,
                    "action_id": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        return _json(
            200,
            {
                "id": dash.id,
                "entity_id": _entity("dashboard", dash.id),
                "name": dash.name,
                "description": dash.description,
                "collection_id": dash.collection_id,
                "archived": False,
                "can_write": False,
                "enable_embedding": False,
                "public_uuid": None,
                "auto_apply_filters": True,
                "width": "fixed",
                "created_at": stamp,
                "updated_at": stamp,
                "parameters": [p.describe() for p in dash.parameters],
                "tabs": [],
                "dashcards": dashcards,
            },
        )

    def _dashcard(self, raw_d: str, raw_dc: str, raw_c: str) -> tuple[Dashboard, Dashcard, Card]:
        dash = self._dashboard(raw_d)
        for raw in (raw_dc, raw_c):
            if not raw.isdigit() or int(raw) <= 0:
                raise _errors400("id", "value must be an integer greater than zero.")
        dashcard = next((d for d in dash.dashcards if d.id == int(raw_dc)), None)
        if dashcard is None or dashcard.card_id != int(raw_c):
            raise BadRequest(404, NOT_FOUND)
        return dash, dashcard, self._card(raw_c)

    def query_dashcard(self, raw_d: str, raw_dc: str, raw_c: str) -> Response:
        dash, dashcard, card = self._dashcard(raw_d, raw_dc, raw_c)
        form = self._form()
        params = dashboard_card_parameters(dash, dashcard, card, self._parameters(form))
        return self._run(card, params, "query", form, context="dashboard", dashboard=dash)

    def export_dashcard(self, raw_d: str, raw_dc: str, raw_c: str, fmt: str) -> Response:
        dash, dashcard, card = self._dashcard(raw_d, raw_dc, raw_c)
        if fmt not in ("api", "json", "csv"):
            return _text(400, f"{fmt} exports are not supported by the sandbox.")
        form = self._form()
        params = dashboard_card_parameters(dash, dashcard, card, self._parameters(form))
        return self._run(card, params, fmt, form, context="dashboard", dashboard=dash)

    # -- running queries -------------------------------------------------------------------
    def _run(
        self,
        card: Card,
        params: list[Any],
        fmt: str,
        form: dict[str, Any],
        *,
        context: str,
        dashboard: Dashboard | None = None,
    ) -> Response:
        sb = self.sb
        tz = zone(sb.report_timezone)
        started = time.perf_counter()
        started_at = _iso_now(sb.clock.now(), tz.tz)
        limit = sb.query_row_limit if fmt == "query" else sb.export_row_limit
        format_rows = self._bool(form, "format_rows") if fmt in ("json", "csv") else False
        ignore_cache = self._bool(form, "ignore_cache") if fmt == "query" else True
        json_query = {
            "type": "native",
            "native": {
                "query": card.sql,
                "template-tags": {t.name: t.template_tag() for t in card.tags},
            },
            "database": 2,
            "parameters": params,
            "constraints": (
                {"max-results": 10000, "max-results-bare-rows": limit} if fmt == "query" else None
            ),
            "middleware": {
                "js-int-to-string?": fmt == "query",
                "ignore-cached-results?": ignore_cache,
                "process-viz-settings?": fmt in ("json", "csv"),
                "format-rows?": format_rows if fmt in ("json", "csv") else True,
            },
        }
        if dashboard is not None:
            json_query["dashboard_id"] = dashboard.id
        today = dt.datetime.fromtimestamp(sb.clock.now(), tz.tz).date()
        try:
            values = resolve_card_parameters(card, params)  # may raise InvalidParameter (500)
            table = card.run(values, RunContext(today, card.id, limit)).head(limit)
        except QueryError as exc:
            return self._failed(card, exc, fmt, json_query, started_at, context)
        elapsed = lambda: int((time.perf_counter() - started) * 1000)  # noqa: E731
        cols = table.metadata()
        native_form = {"query": card.sql, "params": None}
        if fmt == "query":
            rows = rows_of(table, 0, table.length, STYLE_API, tz, js_int_to_string=True)
            data: dict[str, Any] = {
                "rows": rows,
                "cols": cols,
                "native_form": native_form,
                "results_timezone": sb.report_timezone,
                "requested_timezone": sb.report_timezone,
                "format-rows?": True,
                "results_metadata": {"columns": cols},
                "insights": None,
            }
            if table.length == limit:
                data["rows_truncated"] = limit
            doc = {
                "data": data,
                "cached": None,
                "database_id": 2,
                "started_at": started_at,
                "json_query": json_query,
                "average_execution_time": None,
                "status": "completed",
                "context": context,
                "row_count": table.length,
                "running_time": elapsed(),
            }
            return _json(202, doc)
        if fmt == "api":
            return Response(
                202,
                chunks=_api_stream(
                    table,
                    tz,
                    cols,
                    native_form,
                    sb,
                    {
                        "json_query": json_query,
                        "started_at": started_at,
                        "context": context,
                    },
                    elapsed,
                ),
            )
        filename = f"{_slug(card.name)}_{started_at.replace(':', '')}.{fmt}"
        disposition = ("Content-Disposition", f'attachment; filename="{filename}"')
        style = STYLE_FORMATTED if format_rows else STYLE_EXPORT
        if fmt == "json":
            return Response(200, chunks=_json_stream(table, tz, style), headers=[disposition])
        return Response(
            200,
            content_type="text/csv",
            chunks=_csv_stream(table, tz, style),
            headers=[disposition],
        )

    def _failed(
        self,
        card: Card,
        exc: QueryError,
        fmt: str,
        json_query: dict[str, Any],
        started_at: str,
        context: str,
    ) -> Response:
        details = dict(exc.details)
        klass = details.pop("class", "clojure.lang.ExceptionInfo")
        outer = (
            f"Error executing query: {exc.error}"
            if exc.error_type == "invalid-query"
            else exc.error
        )
        doc: dict[str, Any] = {
            "data": {"rows": [], "cols": []},
            "row_count": 0,
            "status": "failed",
            "class": klass,
            "error": exc.error,
            **details,
            "stacktrace": [
                "org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse"
                "(QueryExecutorImpl.java:2725)"
            ],
            "error_type": exc.error_type,
            "ex-data": {"type": exc.error_type},
            "via": [
                {
                    "status": "failed",
                    "class": "clojure.lang.ExceptionInfo",
                    "error": outer,
                    "stacktrace": ["--> driver.sql_jdbc.execute$execute_reducible_query"],
                    "error_type": exc.error_type,
                    "ex-data": {"type": exc.error_type, "sql": card.sql, "params": None},
                }
            ],
            "json_query": json_query,
            "database_id": 2,
            "card_id": card.id,
            "action_id": None,
            "context": context,
            "started_at": started_at,
            "running_time": 0,
        }
        if fmt in ("json", "csv"):
            del doc["json_query"]
            ctype = "text/csv" if fmt == "csv" else JSON_TYPE
            return Response(200, orjson.dumps(doc), ctype)
        return _json(202, doc)


# ---------------------------------------------------------------------------------------
# streamed bodies


def _batches(table: Table) -> Iterator[tuple[int, int]]:
    for start in range(0, table.length, BATCH_ROWS):
        yield start, min(start + BATCH_ROWS, table.length)


def _api_stream(
    table: Table,
    tz: Any,
    cols: list[dict[str, Any]],
    native_form: dict[str, Any],
    sb: Sandbox,
    extra: dict[str, Any],
    elapsed: Callable[[], int],
) -> Iterator[bytes]:
    """``{"data":{"rows":[`` first, rows batch by batch, then cols and the rest."""
    yield b'{"data":{"rows":['
    first = True
    for start, stop in _batches(table):
        body = orjson.dumps(rows_of(table, start, stop, STYLE_API, tz))[1:-1]
        yield body if first else b"," + body
        first = False
    data_rest = {
        "cols": cols,
        "native_form": native_form,
        "results_timezone": sb.report_timezone,
        "requested_timezone": sb.report_timezone,
        "format-rows?": True,
        "insights": None,
    }
    rest = {
        "cached": None,
        "database_id": 2,
        "started_at": extra["started_at"],
        "json_query": extra["json_query"],
        "average_execution_time": None,
        "status": "completed",
        "context": extra["context"],
        "row_count": table.length,
        "running_time": elapsed(),
    }
    yield b"]," + orjson.dumps(data_rest)[1:] + b"," + orjson.dumps(rest)[1:]


def _json_stream(table: Table, tz: Any, style: str) -> Iterator[bytes]:
    """An array of objects keyed by display name (duplicates collapse, like ``zipmap``)."""
    names = [c.display_name for c in table.columns]
    yield b"["
    first = True
    for start, stop in _batches(table):
        rows = rows_of(table, start, stop, style, tz)
        body = orjson.dumps([dict(zip(names, r, strict=False)) for r in rows])[1:-1]
        yield body if first else b"," + body
        first = False
    yield b"]"


def _csv_stream(table: Table, tz: Any, style: str) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.display_name for c in table.columns])
    yield buf.getvalue().encode()
    bool_cols = [i for i, c in enumerate(table.columns) if c.kind == "bool"]
    for start, stop in _batches(table):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        rows = rows_of(table, start, stop, style, tz)
        if bool_cols and style == STYLE_EXPORT:
            rows = [_csv_bools(r, bool_cols) for r in rows]
        writer.writerows(rows)
        yield buf.getvalue().encode()


def _csv_bools(row: tuple, idx: list[int]) -> list[Any]:
    out = list(row)
    for i in idx:
        if out[i] is not None:
            out[i] = "true" if out[i] else "false"
    return out


# ---------------------------------------------------------------------------------------
# small helpers


def _errors400(key: str, message: str) -> BadRequest:
    return BadRequest(400, message, {key: message})


def _iso_now(epoch: float, tz: Any) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz)
    text = moment.isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def _short_tz(name: str) -> str:
    return dt.datetime.now(zone(name).tz).strftime("%Z")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "query_result"


def _entity(kind: str, ident: int) -> str:
    from .catalog import entity_id

    return entity_id(kind, ident)


__all__ = ["Column", "Request", "Response", "Sandbox"]
