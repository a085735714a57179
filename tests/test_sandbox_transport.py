"""The sandbox's HTTP layer: framing, gzip, connection reuse and the request log.

Metabase answers a query as a ``StreamingResponse`` (chunked, ``Connection: close``) and
everything else as a complete JSON or text body on a kept-alive connection; the log
records when each request started and finished, so tests assert order and overlap.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from http.client import HTTPResponse
from typing import Any

import pytest
import requests

from massive_magic.sandbox import Request, Sandbox, demo

SEQ = f"/api/card/{demo.SEQUENCE}"


# --- helpers ------------------------------------------------------------------------------


def login(srv: Sandbox) -> str:
    r = requests.post(
        f"{srv.url}/api/session",
        json={"username": srv.username, "password": srv.password},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["id"]


def query(
    http: requests.Session, srv: Sandbox, card: int, fmt: str | None = None, **kw: Any
) -> requests.Response:
    path = f"/api/card/{card}/query" + (f"/{fmt}" if fmt else "")
    return http.post(srv.url + path, timeout=30, **kw)


def exchange(sock: socket.socket, method: str, path: str, token: str) -> HTTPResponse:
    """Send one request on ``sock`` and read its whole answer (identity encoding)."""
    body = b"{}" if method == "POST" else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: sandbox\r\nX-Metabase-Session: {token}\r\n"
        f"Accept-Encoding: identity\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    resp = HTTPResponse(sock, method=method)
    resp.begin()
    resp.read()
    return resp


def dashcard_path() -> str:
    return (
        f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}/dashcard/{demo.DASHCARD_BROKEN}"
        f"/card/{demo.BROKEN}/query"
    )


# --- gzip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream_fmt", [None, "api"])
@pytest.mark.parametrize("accept", ["gzip, deflate", "identity"])
def test_gzip(
    http: requests.Session, sandbox: Sandbox, accept: str, stream_fmt: str | None
) -> None:
    r = query(
        http, sandbox, demo.SEQUENCE, stream_fmt, headers={"Accept-Encoding": accept}, stream=True
    )
    raw = r.raw.read(decode_content=False)
    if accept.startswith("gzip"):
        assert r.headers["Content-Encoding"] == "gzip"
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    else:
        assert "Content-Encoding" not in r.headers
    assert json.loads(raw)["row_count"] == 10


# --- streamed answers close the connection, complete answers keep it ------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", f"{SEQ}/query", 202),
        ("POST", f"{SEQ}/query/api", 202),
        ("POST", f"{SEQ}/query/csv", 200),
        ("POST", f"{SEQ}/query/json", 200),
        ("POST", f"/api/card/{demo.BROKEN}/query", 202),  # a failed query is streamed too
        ("POST", dashcard_path(), 202),
    ],
)
def test_query_answers_are_streamed_then_the_connection_closes(
    sandbox: Sandbox, method: str, path: str, status: int
) -> None:
    token = login(sandbox)
    with socket.create_connection((sandbox.host, sandbox.port), timeout=30) as sock:
        resp = exchange(sock, method, path, token)
        assert resp.status == status
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert resp.getheader("Connection") == "close"
        assert resp.getheader("X-Accel-Buffering") == "no"
        assert resp.getheader("Content-Length") is None
        assert sock.recv(1) == b""  # the server closed its end
    (rec,) = sandbox.requests(method, path)
    assert rec.complete


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/health", 200),
        ("GET", "/api/user/current", 200),
        ("GET", SEQ, 200),
        ("GET", "/api/card", 200),
        ("GET", f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}", 200),
        ("GET", "/api/card/999999", 404),
        ("POST", "/api/card/999999/query", 404),  # refused before streaming
        ("POST", f"{SEQ}/query/xlsx", 400),
    ],
)
def test_complete_answers_keep_the_connection_alive(
    sandbox: Sandbox, method: str, path: str, status: int
) -> None:
    token = login(sandbox)
    with socket.create_connection((sandbox.host, sandbox.port), timeout=30) as sock:
        first = exchange(sock, method, path, token)
        assert first.status == status
        assert first.getheader("Connection") is None
        assert first.getheader("Content-Length") is not None
        second = exchange(sock, "GET", "/api/health", token)  # same socket
        assert second.status == 200
        stream = exchange(sock, "POST", f"{SEQ}/query/api", token)  # still the same socket
        assert stream.getheader("Connection") == "close"
        assert sock.recv(1) == b""
    assert [r.path for r in sandbox.log[-3:]] == [path, "/api/health", f"{SEQ}/query/api"]


def test_requests_reads_every_answer_in_turn(http: requests.Session, sandbox: Sandbox) -> None:
    """A pooled client follows open, close, reopen without a hitch."""
    for _ in range(3):
        assert http.get(sandbox.url + "/api/user/current").ok
        assert query(http, sandbox, demo.SEQUENCE, "api").json()["row_count"] == 10
        assert query(http, sandbox, demo.SEQUENCE).json()["status"] == "completed"
    assert all(r.complete for r in sandbox.log)


# --- the request log: counts, order, overlap ---------------------------------------------


def test_log_and_count(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.reset_log()
    http.get(sandbox.url + "/api/card")
    http.get(sandbox.url + SEQ)
    query(http, sandbox, demo.SEQUENCE)
    query(http, sandbox, demo.SEQUENCE, "api")
    assert sandbox.count() == 4
    assert sandbox.count("GET") == 2
    assert sandbox.count(path="/api/card") == 1
    assert sandbox.count(path="/api/card/*") == 3
    assert sandbox.count("post", f"{SEQ}/query") == 1
    rec = sandbox.log[-1]
    assert (rec.method, rec.path, rec.status) == ("POST", f"{SEQ}/query/api", 202)
    assert rec.header("x-metabase-session") == http.headers["X-Metabase-Session"]
    assert http.headers["X-Metabase-Session"] not in repr(rec)


def test_login_password_never_logged(sandbox: Sandbox) -> None:
    login(sandbox)
    rec = sandbox.requests("POST", "/api/session")[-1]
    assert sandbox.password.encode() not in rec.body
    assert sandbox.password not in repr(sandbox.log)
    assert sandbox.password not in repr(sandbox)


def test_sequential_requests_are_ordered_in_the_log(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.reset_log()
    http.get(sandbox.url + "/api/health")
    query(http, sandbox, demo.SEQUENCE, "api")
    http.get(sandbox.url + SEQ)
    a, b, c = sandbox.log
    for rec in (a, b, c):
        assert rec.finished is not None and rec.started <= rec.finished
    assert a.finished is not None and b.finished is not None
    assert a.finished <= b.started and b.finished <= c.started
    assert not sandbox.overlapping(a, b) and not sandbox.overlapping(b, c)
    assert sandbox.max_in_flight() == 1


def test_concurrent_requests_overlap_in_the_log(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.reset_log()
    sandbox.faults.delay_next(3, seconds=1.0, path="/api/health")
    token = http.headers["X-Metabase-Session"]
    answers: list[int] = []

    def get() -> None:
        r = requests.get(sandbox.url + "/api/health", headers={"X-Metabase-Session": token})
        answers.append(r.status_code)

    threads = [threading.Thread(target=get) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [200, 200, 200]
    a, b, c = sandbox.requests(path="/api/health")
    assert sandbox.overlapping(a, b) and sandbox.overlapping(b, c) and a.overlaps(c)
    assert sandbox.max_in_flight(path="/api/health") == 3
    assert sandbox.max_in_flight("POST") == 0
    http.get(sandbox.url + "/api/health")
    assert not sandbox.overlapping(a, sandbox.log[-1])


def test_overlap_arithmetic() -> None:
    def rec(started: float, finished: float | None) -> Request:
        return Request("GET", "/", started=started, finished=finished)

    assert rec(0, 2).overlaps(rec(1, 3))
    assert rec(1, 3).overlaps(rec(0, 2))
    assert not rec(0, 1).overlaps(rec(1, 2))  # one ended as the other began
    assert rec(0, None).overlaps(rec(5, 6))  # still in flight
    assert not rec(7, None).overlaps(rec(5, 6))


# --- LARGE streaming ----------------------------------------------------------------------


def test_large_is_streamed_in_batches(http: requests.Session, sandbox: Sandbox) -> None:
    http.headers["Accept-Encoding"] = "identity"
    with query(http, sandbox, demo.LARGE, "api", stream=True) as r:
        assert r.status_code == 202
        assert r.headers["Transfer-Encoding"] == "chunked"
        head = b""
        for chunk in r.iter_content(1 << 16):
            head += chunk
            if len(head) >= 1 << 20:
                break
        (rec,) = sandbox.requests(path=f"/api/card/{demo.LARGE}/query/api")
        # the first megabyte arrived while the server had produced only a few batches
        assert not rec.complete
        assert rec.bytes_sent < 20 * (1 << 20)
    assert head.startswith(b'{"data":{"rows":[[1,')
    first_row = json.loads(head[len(b'{"data":{"rows":[') :].split(b"]", 1)[0] + b"]")
    assert len(first_row) == 8
    assert first_row[1] > 2**53  # device ids are beyond 2^53, JSON numbers in the api export
    # no write was bigger than one batch of 20,000 rows (~2.5 MB here)
    assert 0 < rec.largest_write < 4 * (1 << 20)


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["80000", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``massive-magic sandbox --port 80000`` used to end in an OverflowError traceback."""
    from massive_magic import cli
    from massive_magic.sandbox.__main__ import main

    for run in (lambda: main(["--port", port]), lambda: cli.main(["sandbox", "--port", port])):
        with pytest.raises(SystemExit) as info:
            run()
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "error: argument --port" in err and "Traceback" not in err
        assert "port" in err.splitlines()[-1]  # the last line says what is wrong


def test_a_port_in_use_is_one_line(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from massive_magic.sandbox.__main__ import main

    assert main(["--port", str(sandbox.port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Cannot listen on 127.0.0.1:{sandbox.port}: ")
    assert "Traceback" not in err
