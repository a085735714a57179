"""Server answers -> errors: Metabase's words, never a stack trace, never a secret.

A tiny echo server on 127.0.0.1 (port 0, in a thread) answers like a proxy that
copies the request into its error page, so the tests can check that no password,
session token or API key reaches a message, whatever the status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from massive_magic.answers import error_text, scrub
from massive_magic.errors import AccessDenied, AuthError, MassiveError, NotFound, ResponseError
from massive_magic.secret import Secret
from massive_magic.session import MetabaseSession
from massive_magic.settings import Settings

ME = "/api/user/current"
TOKEN = "5c0ffee0-1234-4abc-9def-00000000cafe"
PASSWORD = 'pa"ss\\word-with-an-echo'  # a quote and a backslash: JSON escapes both
API_KEY = "mb_" + "k" * 40


TRACE = {
    "via": [{"type": "clojure.lang.ExceptionInfo", "message": "boom", "at": ["x", "y", 1]}],
    "trace": [["metabase.query_processor", "invoke", "qp.clj", 42]] * 30,
    "cause": "Card 24,009 does not have a template tag named since_date.",
    "message": "Invalid parameter: Card 24,009 does not have a template tag named since_date.",
}


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain", b"Unauthenticated", "Unauthenticated"),
        ("text/plain", b"Not found.", "Not found."),
        (
            "text/plain; charset=utf-8",
            b"You don't have permissions to do that.\n",
            "You don't have permissions to do that.",
        ),
        (
            "application/json",
            b'{"errors":{"password":"did not match stored password"}}',
            "password: did not match stored password",
        ),
        (
            "application/json",
            b'{"errors":{"_error":"Your account is disabled."}}',
            "Your account is disabled.",
        ),
        (
            "application/json",
            b'{"errors":{"username":"value must be a non-blank string."},'
            b'"specific-errors":{"username":["should be a string"]}}',
            "username: value must be a non-blank string.",
        ),
        ("application/json", json.dumps(TRACE).encode(), TRACE["message"]),
        (
            "application/json",
            b'{"message":"Max concurrent query limit reached"}',
            "Max concurrent query limit reached",
        ),
        ("application/json", b'"Not found."', "Not found."),
        ("application/json", b'{"errors": {"password": "did n', None),
        ("text/html", b"<html><head><title>502 Bad Gateway</title></head></html>", None),
        ("text/plain", b"<!DOCTYPE html><html><body>proxy</body></html>", None),
        ("text/plain", b"", None),
        ("application/json", b"{}", None),
    ],
)
def test_error_text(content_type: str, body: bytes, text: str | None) -> None:
    result = error_text(content_type, body)
    assert result == text
    assert "qp.clj" not in (result or "")  # never a stack trace


def test_error_text_scrubs_secrets_before_shortening() -> None:
    """A secret straddling the 300-character cut leaves not even its first half."""
    secret = "S3cr3t-P4ssw0rd-that-is-long"
    body = json.dumps({"message": "x" * 290 + secret + " tail"}).encode()
    text = error_text("application/json", body, (Secret(secret),))
    assert text is not None and "***" in text
    assert not any(secret[:n] in text for n in range(6, len(secret) + 1))


@pytest.mark.parametrize(
    "echo",
    [
        PASSWORD,  # as it was sent
        json.dumps(PASSWORD)[1:-1],  # inside a JSON string the server built by hand
        "pa%22ss%5Cword-with-an-echo",  # URL-encoded
    ],
)
def test_scrub_catches_the_forms_a_secret_takes(echo: str) -> None:
    assert scrub(f"request was: {echo}!", (Secret(PASSWORD),)) == "request was: ***!"


def test_secret_never_shows_itself() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) and TOKEN not in str(secret)
    assert TOKEN not in repr({"X-Metabase-Session": secret})
    assert secret.reveal() == TOKEN and secret == Secret(TOKEN)


# -- a server that echoes the request into its errors ---------------------------------------


class Echo(BaseHTTPRequestHandler):
    """Logs in anyone; answers ``status`` with the request line, headers and body echoed."""

    status = 500

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        if self.path == "/api/session" and self.server.login_ok:  # type: ignore[attr-defined]
            self._send(200, {"id": TOKEN})
            return
        echoed = f"{self.command} {self.path} {dict(self.headers)} {body.decode()}"
        self._send(self.server.status, {"message": f"Bad request: {echoed}"})  # type: ignore[attr-defined]

    def _send(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.seen = []  # type: ignore[attr-defined]
    server.status = 500  # type: ignore[attr-defined]
    server.login_ok = False  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def session_on(echo: Any, tmp_path: Path, **settings: Any) -> MetabaseSession:
    options: dict[str, Any] = {"url": echo.url, "cache_dir": tmp_path / "cache"}
    options.update(settings)
    return MetabaseSession(Settings(**options), retries=0)


def texts(exc: BaseException) -> str:
    return " ".join([str(exc), repr(exc), getattr(exc, "message", "")])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_an_echoed_password_never_reaches_the_message(
    echo: Any, tmp_path: Path, status: int
) -> None:
    echo.status = status
    session = session_on(echo, tmp_path, username="ana@partner.example", password=PASSWORD)
    with pytest.raises(MassiveError) as caught:
        session.login()
    assert "Bad request: POST /api/session" in caught.value.message  # the echo was read
    assert "ana@partner.example" in caught.value.message
    for form in (PASSWORD, json.dumps(PASSWORD)[1:-1], "word-with-an-echo"):
        assert form not in texts(caught.value)
    assert echo.seen == [("POST", "/api/session")]


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, AccessDenied), (404, NotFound), (409, ResponseError), (500, ResponseError)],
)
def test_an_echoed_session_token_never_reaches_the_message(
    echo: Any, tmp_path: Path, status: int, error: type[MassiveError]
) -> None:
    echo.status, echo.login_ok = status, True
    session = session_on(echo, tmp_path, username="ana@partner.example", password=PASSWORD)
    with pytest.raises(error) as caught:
        session.request("GET", "/api/card/1")
    assert "GET /api/card/1" in caught.value.message
    assert TOKEN not in texts(caught.value) and PASSWORD not in texts(caught.value)
    assert echo.seen == [("POST", "/api/session"), ("GET", "/api/card/1")]


def test_an_echoed_api_key_never_reaches_the_message(echo: Any, tmp_path: Path) -> None:
    session = session_on(echo, tmp_path, api_key=API_KEY)
    with pytest.raises(ResponseError) as caught:
        session.request("GET", ME)
    assert "Bad request: GET /api/user/current" in caught.value.message
    assert API_KEY not in texts(caught.value)


def test_a_refused_api_key_is_an_auth_error(echo: Any, tmp_path: Path) -> None:
    echo.status = 401
    session = session_on(echo, tmp_path, api_key=API_KEY)
    with pytest.raises(AuthError, match="refused the API key") as caught:
        session.request("GET", ME)
    assert API_KEY not in texts(caught.value)
    assert echo.seen == [("GET", ME)]  # no login, no second try


# -- https to a server that speaks http ---------------------------------------------------


def test_https_to_a_plain_http_server_says_so(sandbox: Any, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{sandbox.port}"
    settings = Settings(url=url, username=sandbox.username, password="x", cache_dir=tmp_path)
    session = MetabaseSession(settings, backoff_factor=0.01)
    with pytest.raises(ResponseError) as caught:
        session.login()
    message = caught.value.message
    assert "does not speak https" in message
    assert f"http://127.0.0.1:{sandbox.port}" in message  # what a local server usually is
    assert "SSLError" not in message
