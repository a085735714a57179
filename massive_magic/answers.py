"""Server answers to errors: every message built from what a server sent is built here.

Metabase errors come in five shapes (``metabase-api.md`` §0.2): plain text, an
``{"errors": {...}}`` map, an exception dump with a stack trace, a failed query
inside a 2xx, and, from whatever sits in front of it, a proxy's HTML page. This
module reads Metabase's own words out of them (never the stack trace), maps a
status to the error tree, and words a request that got no answer at all.

A server or proxy may echo the request in its error body, so each text taken from
an answer (body, reason phrase, ``Location``) passes through :func:`scrub` with the
secrets of that request (password, session tokens, API key) *before* it is cut
to length, so not even part of a secret can reach a message.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus

import orjson
import requests
import urllib3

from .errors import AccessDenied, MassiveError, NextStep, NotFound, ResponseError, Step
from .secret import Secret

__all__ = [
    "RETRY_STATUSES",
    "error_body",
    "error_text",
    "html_title",
    "raise_for_answer",
    "read_json",
    "scrub",
    "transport_message",
]

#: Gateway answers worth repeating (Metabase itself sends 503 when overloaded).
RETRY_STATUSES = frozenset({502, 503, 504})
#: How much of an error body we read to describe it.
ERROR_BODY_LIMIT = 64 * 1024
HIDDEN = "***"


# -- secrets out of server text -----------------------------------------------------------


def scrub(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every secret (raw, JSON-escaped or URL-encoded) replaced by ``***``."""
    for hidden in secrets:
        secret = hidden.reveal()
        if not secret:
            continue
        escaped = orjson.dumps(secret).decode()[1:-1]
        for form in {secret, escaped, quote(secret, safe=""), quote_plus(secret)}:
            if form in text:
                text = text.replace(form, HIDDEN)
    return text


# -- Metabase's words from an error body ----------------------------------------------------


def _shorten(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _looks_like_html(content_type: str, text: str) -> bool:
    head = text.lstrip()[:64].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<head"))


def _json_error_text(doc: Any, secrets: tuple[Secret, ...]) -> str | None:
    """Metabase's message from error shapes E2-E5 (never the stack trace)."""

    def clean(text: str) -> str:
        return _shorten(scrub(text, secrets))

    if isinstance(doc, str):
        return clean(doc) or None
    if not isinstance(doc, dict):
        return None
    errors = doc.get("errors")
    if isinstance(errors, dict) and errors:
        parts = []
        for key, value in errors.items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            parts.append(text if key == "_error" else f"{key}: {text}")
        return clean("; ".join(parts))
    if isinstance(errors, str) and errors.strip():
        return clean(errors)
    for key in ("message", "error", "cause"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return clean(value)
    return None


def error_text(content_type: str, body: bytes, secrets: Iterable[Secret] = ()) -> str | None:
    """Metabase's own words from an error body, or ``None`` (HTML page, empty, unreadable).

    Handles plain text (``Unauthenticated``, ``Not found.``), ``{"errors": {...}}``,
    ``{"message": ...}`` and exception dumps, whose ``trace``/``via`` are dropped.
    ``secrets`` are scrubbed from the text before it is shortened.
    """
    hidden = tuple(secrets)
    text = body.decode("utf-8", "replace").strip()
    if not text or _looks_like_html(content_type, text):
        return None
    if "json" in content_type.lower() or text[:1] in '{["':
        try:
            return _json_error_text(orjson.loads(body), hidden)
        except orjson.JSONDecodeError:
            if "json" in content_type.lower():
                return None  # a cut-off document: no reliable message in it
    return _shorten(scrub(text, hidden))


def html_title(body: bytes) -> str | None:
    """The ``<title>`` of an HTML page (a proxy's error page names its status there)."""
    match = re.search(rb"<title>\s*([^<]{1,120}?)\s*</title>", body, re.IGNORECASE)
    return match.group(1).decode("utf-8", "replace") if match else None


def error_body(response: requests.Response, stream: bool) -> bytes:
    """Up to 64 KiB of an error body; a body that cannot be read counts as empty."""
    try:
        if not stream:
            return response.content[:ERROR_BODY_LIMIT]
        return next(response.iter_content(ERROR_BODY_LIMIT), b"")
    except requests.exceptions.RequestException:
        return b""
    finally:
        response.close()


# -- answers -----------------------------------------------------------------------------------


def read_json(response: requests.Response) -> Any:
    """The body parsed with orjson; an invalid or cut-off body is a :class:`ResponseError`."""
    try:
        body = response.content
    except requests.exceptions.RequestException:
        raise ResponseError(
            f"The answer from {response.url} ended early (the connection was closed) — try again.",
            status=response.status_code,
            url=response.url,
        ) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # ``from None``: orjson's error keeps the whole document, which may hold a token.
        what = "is empty" if not body.strip() else "is not valid JSON (it may have been cut off)"
        raise ResponseError(
            f"The answer from {response.url} {what} — try again; if this persists, "
            "something between you and Metabase is changing the answers.",
            status=response.status_code,
            url=response.url,
        ) from None


def raise_for_answer(
    method: str,
    url: str,
    base: str,
    response: requests.Response,
    *,
    stream: bool,
    secrets: Iterable[Secret],
) -> NoReturn:
    """Map a non-2xx answer to the error tree (its body is read and the response closed).

    The error is built in a helper, so no frame left in the traceback holds the body.
    """
    raise _answer_error(method, url, base, response, stream, tuple(secrets))


def _answer_error(
    method: str,
    url: str,
    base: str,
    response: requests.Response,
    stream: bool,
    secrets: tuple[Secret, ...],
) -> MassiveError:
    status = response.status_code
    body = error_body(response, stream)
    content_type = response.headers.get("Content-Type", "")
    reason = scrub(response.reason or "", secrets)
    path = url[len(base) :] or "/"
    if 300 <= status < 400:
        location = scrub(response.headers.get("Location", "?"), secrets)
        return ResponseError(
            f"{url} redirected ({status}) to {location}. Set the Metabase URL to the "
            "address it moved to (the session token is not sent on redirects).",
            status=status,
            url=url,
        )
    text = error_text(content_type, body, secrets)
    if text is None:
        title = html_title(body)
        kind = "an HTML page, probably a proxy" if title or body.strip() else "an empty body"
        advice = "try again in a minute" if status >= 500 else f"check the URL {base}"
        return ResponseError(
            f"The server at {base} answered {status} {reason} ({kind}) — {advice}.",
            status=status,
            url=url,
        )
    if status == 403:
        return AccessDenied(f"Metabase at {base} denied {method} {path}: {text}")
    if status == 404:
        return NotFound(f"Metabase at {base} found nothing at {path}: {text}")
    advice = " — try again in a minute" if status in RETRY_STATUSES else ""
    return ResponseError(
        f"Metabase at {base} answered {status} {reason} to {method} {path}: {text}{advice}",
        status=status,
        url=url,
    )


# -- no answer at all ----------------------------------------------------------------------------

#: OpenSSL's words when the other side answered a TLS hello in plain text.
_PLAIN_HTTP = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


def _transport_reason(exc: BaseException) -> str:
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if match:
        return match.group(1).strip()
    return type(exc).__name__


def _root(exc: BaseException) -> BaseException:
    """The innermost exception requests and urllib3 wrapped around each other."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _tls_message(exc: BaseException, base: str) -> str:
    root = _root(exc)
    if isinstance(root, ssl.SSLCertVerificationError):
        detail = root.verify_message or "verification failed"
        return f"Could not connect to {base}: its certificate is not trusted ({detail})."
    reason = getattr(root, "reason", None) or ""
    if reason in _PLAIN_HTTP or "wrong version number" in str(root):
        plain = "http://" + base.removeprefix("https://")
        return (
            f"Could not connect to {base}: the server there does not speak https; it answered "
            f"in plain http (a local server is usually {plain})."
        )
    return f"Could not connect to {base}: the https handshake failed ({reason or 'SSLError'})."


def transport_message(
    exc: requests.exceptions.RequestException, url: str, base: str, read_timeout: float
) -> tuple[str, tuple[NextStep, ...]]:
    """A short, secret-free sentence (and next steps) for a request without a full answer."""
    # Once urllib3 gives up retrying, requests reports every cause as a ConnectionError
    # wrapping MaxRetryError; the real cause is its ``reason``.
    cause = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(
        cause, urllib3.exceptions.ReadTimeoutError
    ):
        return (
            f"Metabase at {base} did not answer within {read_timeout:g} s",
            (NextStep(Step.RAISE_TIMEOUT),),
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_message(exc, base), ()
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"The answer from {url} ended early (the connection was closed) — try again.", ()
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return f"The connection to {base} was dropped before it answered — try again.", ()
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"Could not connect to {base} (timed out) — check the URL and your network.", ()
    if isinstance(exc, requests.exceptions.ConnectionError):
        return (
            f"Could not connect to {base} ({_transport_reason(exc)}) — "
            "check the URL and your network.",
            (),
        )
    return f"The request to {url} failed ({type(exc).__name__}) — try again.", ()
