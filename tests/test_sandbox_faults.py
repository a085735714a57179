"""The sandbox's faults, over real HTTP: what each does, which request it picks, its bounds.

No test here reads the wall clock: a pause is shown by the request log (a request still
in flight, ``started``/``finished`` order, the number of body writes), never by timing.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.client import HTTPConnection
from typing import Any

import pytest
import requests

from massive_magic.sandbox import Request, Sandbox, demo
from massive_magic.sandbox.faults import MAX_PAD, MAX_PAUSE

SEQ = f"/api/card/{demo.SEQUENCE}"
ME = "/api/user/current"


# --- helpers ------------------------------------------------------------------------------


def login(srv: Sandbox, password: str | None = None) -> requests.Response:
    return requests.post(
        f"{srv.url}/api/session",
        json={"username": srv.username, "password": password or srv.password},
        timeout=10,
    )


def query(
    http: requests.Session, srv: Sandbox, card: int, fmt: str | None = None, **kw: Any
) -> requests.Response:
    path = f"/api/card/{card}/query" + (f"/{fmt}" if fmt else "")
    return http.post(srv.url + path, timeout=30, **kw)


def rows_param(n: int) -> dict[str, Any]:
    target = ["variable", ["template-tag", "rows"]]
    return {"parameters": [{"type": "number/=", "target": target, "value": n}]}


def wait_logged(srv: Sandbox, path: str, count: int = 1) -> list[Request]:
    """The first ``count`` requests to ``path``, once the sandbox has read them."""
    event = threading.Event()
    for _ in range(1000):
        found = srv.requests(path=path)
        if len(found) >= count:
            return found[:count]
        event.wait(0.01)
    raise AssertionError(f"{path} never reached the sandbox")


def connect(srv: Sandbox) -> HTTPConnection:
    return HTTPConnection(srv.host, srv.port, timeout=30)


def auth_headers(http: requests.Session) -> dict[str, str]:
    return {"X-Metabase-Session": str(http.headers["X-Metabase-Session"])}


# --- a proxy's own answers: fail, html, echo -----------------------------------------------


def test_fail_next(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next(2, status=502)
    for _ in range(2):
        r = http.get(sandbox.url + ME)
        assert r.status_code == 502
        assert r.headers["Content-Type"] == "text/html"
        assert "<title>502 Bad Gateway</title>" in r.text
        assert "nginx" in r.text
    assert http.get(sandbox.url + ME).status_code == 200
    assert [r.status for r in sandbox.requests(path=ME)] == [502, 502, 200]


def test_fail_next_for_one_path(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next(status=504, path="/api/card/*")
    assert http.get(sandbox.url + ME).status_code == 200
    r = query(http, sandbox, demo.SEQUENCE)
    assert r.status_code == 504
    assert "504 Gateway Time-out" in r.text or "504 Gateway Timeout" in r.text
    assert query(http, sandbox, demo.SEQUENCE).status_code == 202


def test_html_next_is_a_sign_in_page_and_metabase_never_sees_the_login(
    sandbox: Sandbox,
) -> None:
    sandbox.faults.html_next(path="/api/session", method="POST")
    sessions = len(sandbox.accounts.sessions)
    r = login(sandbox)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Sign in</title>" in r.text
    assert "Set-Cookie" not in r.headers
    assert len(sandbox.accounts.sessions) == sessions  # not forwarded
    with pytest.raises(requests.exceptions.JSONDecodeError):
        r.json()
    assert login(sandbox).json()["id"]  # used up: the next login goes through
    assert [r.fault for r in sandbox.requests("POST", "/api/session")] == ["html", None]


def test_html_next_for_data_requests(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.html_next(2, path=f"{SEQ}/query*")
    assert http.get(sandbox.url + ME).status_code == 200
    for fmt in (None, "api"):
        r = query(http, sandbox, demo.SEQUENCE, fmt)
        assert (r.status_code, r.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
        assert "Sign in to continue" in r.text
    assert query(http, sandbox, demo.SEQUENCE, "api").json()["row_count"] == 10
    assert sandbox.faults.pending == []


def test_echo_next_echoes_the_login_password(sandbox: Sandbox) -> None:
    sandbox.faults.echo_next(status=500, path="/api/session")
    sessions = len(sandbox.accounts.sessions)
    r = login(sandbox, password="hunter2-echoed")
    assert r.status_code == 500
    assert r.headers["Content-Type"] == "text/plain"
    assert r.text.startswith("POST /api/session HTTP/1.1\r\n")
    assert '"password": "hunter2-echoed"' in r.text
    assert "Content-Type: application/json\r\n" in r.text
    assert len(sandbox.accounts.sessions) == sessions  # not forwarded
    (rec,) = sandbox.requests("POST", "/api/session")
    assert (rec.fault, rec.status, rec.body) == ("echo", 500, b"")  # the log keeps no password


@pytest.mark.parametrize("status", [400, 502])
def test_echo_next_echoes_the_session_and_api_key_headers(
    http: requests.Session, sandbox: Sandbox, status: int
) -> None:
    sandbox.faults.echo_next(status=status, path=f"{SEQ}/query/api")
    assert http.get(sandbox.url + ME).status_code == 200  # another path: untouched
    r = query(http, sandbox, demo.SEQUENCE, "api", headers={"X-API-Key": sandbox.api_key}, json={})
    assert r.status_code == status
    token = str(http.headers["X-Metabase-Session"])
    assert f"X-Metabase-Session: {token}\r\n" in r.text
    assert f"X-API-Key: {sandbox.api_key}\r\n" in r.text
    assert r.text.endswith("\r\n\r\n{}")
    assert query(http, sandbox, demo.SEQUENCE, "api").status_code == 202


def test_proxy_answers_leave_body_faults_queued(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next(path=ME)
    sandbox.faults.cut_next(path=ME)
    assert http.get(sandbox.url + ME).status_code == 502
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(sandbox.url + ME)
    assert [r.fault for r in sandbox.requests(path=ME)] == ["fail", "cut"]


# --- the body on its way: cut, delay, stall, drip, pad -------------------------------------


@pytest.mark.parametrize("fmt", [None, "api"])
def test_cut_next(http: requests.Session, sandbox: Sandbox, fmt: str | None) -> None:
    sandbox.faults.cut_next()
    http.headers["Accept-Encoding"] = "identity"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        query(http, sandbox, demo.SEQUENCE, fmt, json=rows_param(50_000))
    (rec,) = sandbox.requests(path=f"{SEQ}/*")
    assert (rec.fault, rec.complete) == ("cut", False)
    ok = query(http, sandbox, demo.SEQUENCE, fmt, json=rows_param(50_000))
    assert ok.json()["row_count"] == (2000 if fmt is None else 50_000)


def test_delay_next_holds_the_answer_before_it_starts(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.delay_next(1, seconds=1.0, path="/api/health")
    held: list[requests.Response] = []
    thread = threading.Thread(target=lambda: held.append(http.get(sandbox.url + "/api/health")))
    thread.start()
    (slow,) = wait_logged(sandbox, "/api/health")
    quick = requests.get(sandbox.url + ME, headers=auth_headers(http), timeout=10)
    thread.join(30)
    assert (quick.status_code, held[0].status_code) == (200, 200)
    (me,) = sandbox.requests(path=ME)
    # the delayed answer was still held while a later request came and went
    assert slow.started < me.started and me.finished is not None
    assert slow.finished is not None and me.finished < slow.finished
    assert (slow.fault, me.fault) == ("delay", None)
    assert http.get(sandbox.url + "/api/health").ok
    assert [r.fault for r in sandbox.requests(path="/api/health")] == ["delay", None]


def test_delay_after_bytes_stalls_mid_body(http: requests.Session, sandbox: Sandbox) -> None:
    expected = http.get(sandbox.url + ME).content
    sandbox.reset_log()
    sandbox.faults.delay_next(seconds=1.0, after_bytes=40, path=ME)
    conn = connect(sandbox)
    conn.request("GET", ME, headers={**auth_headers(http), "Accept-Encoding": "identity"})
    resp = conn.getresponse()
    assert resp.getheader("Content-Length") == str(len(expected))
    head = resp.read(40)  # the first 40 bytes arrive...
    (rec,) = sandbox.requests(path=ME)
    assert (rec.fault, rec.finished, rec.complete) == ("stall", None, False)  # ...then it stalls
    assert head + resp.read() == expected
    conn.close()
    assert rec.complete and rec.finished is not None


def test_delay_after_bytes_beyond_a_short_body_stalls_before_its_end(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.delay_next(2, seconds=1.0, after_bytes=10**9, path=f"{SEQ}/query/api")
    for accept in ("identity", "gzip"):
        conn = connect(sandbox)
        headers = {**auth_headers(http), "Accept-Encoding": accept}
        conn.request("POST", f"{SEQ}/query/api", body=b"{}", headers=headers)
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") == "chunked"
        body = resp.read(1)  # rows and columns are out; the terminating chunk is held
        rec = sandbox.requests(path=f"{SEQ}/query/api")[-1]
        assert (rec.fault, rec.finished) == ("stall", None)
        body += resp.read()
        conn.close()
        if accept == "gzip":
            body = gzip.decompress(body)
        assert json.loads(body)["row_count"] == 10
        assert rec.complete


def test_drip_next_sends_the_body_piece_by_piece(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.drip_next(interval=0.01, piece=1, max_seconds=MAX_PAUSE, path="/api/health")
    r = requests.get(sandbox.url + "/api/health", headers={"Accept-Encoding": "identity"})
    assert r.json() == {"status": "ok"}
    (rec,) = sandbox.requests(path="/api/health")
    assert (rec.fault, rec.complete) == ("drip", True)
    assert rec.writes == len(r.content) == 15  # one socket write per byte
    r = requests.get(sandbox.url + "/api/health", headers={"Accept-Encoding": "identity"})
    assert sandbox.requests(path="/api/health")[-1].writes == 1


def test_drip_next_is_bounded_then_sends_the_rest(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.faults.drip_next(interval=0.05, piece=2, max_seconds=0.2, path=f"{SEQ}/query/api")
    http.headers["Accept-Encoding"] = "identity"
    body = query(http, sandbox, demo.SEQUENCE, "api", json=rows_param(2000)).json()
    assert body["row_count"] == 2000
    (rec,) = sandbox.requests(path=f"{SEQ}/query/api")
    assert rec.fault == "drip" and rec.complete
    # about max_seconds / interval pieces, then one write per remaining chunk
    assert rec.writes <= 12
    assert rec.bytes_sent > 20_000


@pytest.mark.parametrize("fmt", ["card", "query", "api"])
def test_pad_next_puts_whitespace_before_a_json_body(
    http: requests.Session, sandbox: Sandbox, fmt: str
) -> None:
    path = {"card": SEQ, "query": f"{SEQ}/query", "api": f"{SEQ}/query/api"}[fmt]
    method = "GET" if fmt == "card" else "POST"
    sandbox.faults.pad_next(1_000_000, path=path)
    r = http.request(method, sandbox.url + path, timeout=30)
    assert r.content.startswith(b"\n" * 1_000_000)
    assert not r.content[1_000_000:].startswith(b"\n")
    assert r.json()["id"] == demo.SEQUENCE if fmt == "card" else r.json()["row_count"] == 10
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.headers["Content-Encoding"] == "gzip"  # requests accepts gzip
    rec = sandbox.requests(path=path)[-1]
    assert rec.fault == "pad" and rec.bytes_sent > 1_000_000
    assert len(http.request(method, sandbox.url + path).content) < 10_000


def test_pad_next_gzip_makes_a_small_download_inflate(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.pad_next(20_000_000, gzip=True, path=ME)
    headers = {"Accept-Encoding": "identity"}
    with http.get(sandbox.url + ME, headers=headers, stream=True) as r:
        wire = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert len(wire) < 200_000
    body = gzip.decompress(wire)
    assert len(body) > 20_000_000
    assert json.loads(body)["email"] == demo.DEMO_USERNAME


def test_pad_next_gzip_false_and_only_json_answers(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.pad_next(100, gzip=False)
    r = requests.get(sandbox.url + ME, timeout=10)  # 401 text/plain: not padded
    assert (r.status_code, r.text) == (401, "Unauthenticated")
    assert len(sandbox.faults.pending) == 1
    r = http.get(sandbox.url + ME)
    assert "Content-Encoding" not in r.headers
    assert r.content.startswith(b"\n" * 100)
    assert sandbox.faults.pending == []


# --- a query that fails once rows are out --------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "status", "head"),
    [
        (None, 202, b'{"data":{"rows":[[1,"row 1"],[2,"row 2"],[3,"row 3"]{'),
        ("api", 202, b'{"data":{"rows":[[1,"row 1"],[2,"row 2"],[3,"row 3"]{'),
        ("json", 200, b'[{"N":1,"Label":"row 1"},{"N":2,"Label":"row 2"},{"N":3,"Label":"row 3"}{'),
        ("csv", 200, b"N,Label\n1,row 1\n2,row 2\n3,row 3\n{"),
    ],
)
def test_query_error_mid_stream_appends_the_error_and_completes_the_body(
    http: requests.Session, sandbox: Sandbox, fmt: str | None, status: int, head: bytes
) -> None:
    sandbox.faults.query_error_next(3, error="Error reducing result rows: boom")
    r = query(http, sandbox, demo.SEQUENCE, fmt)  # the body ends: no ChunkedEncodingError
    assert r.status_code == status
    assert r.headers["Connection"] == "close"
    assert r.content.startswith(head)
    error, end = json.JSONDecoder().raw_decode(r.text, len(head) - 1)
    assert end == len(r.text)  # nothing after the error object: no columns, no "]"
    assert (error["status"], error["error"]) == ("failed", "Error reducing result rows: boom")
    assert ("json_query" in error) == (fmt in (None, "api"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    (rec,) = sandbox.requests(path=f"{SEQ}/*")
    assert (rec.fault, rec.complete) == ("query_error", True)
    assert query(http, sandbox, demo.SEQUENCE, fmt).status_code == status  # used up


def test_query_error_before_any_row_and_after_all_rows(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.query_error_next(0, path=f"{SEQ}/query/api")
    sandbox.faults.query_error_next(50, path=f"{SEQ}/query/api")
    first = query(http, sandbox, demo.SEQUENCE, "api").content
    assert first.startswith(b'{"data":{"rows":[{"data":{"rows":[],"cols":[]},"row_count":0')
    last = query(http, sandbox, demo.SEQUENCE, "api").content
    assert last.startswith(b'{"data":{"rows":[[1,"row 1"],')
    assert b'[10,"row 10"]{"data":{"rows":[],"cols":[]}' in last
    assert b'"cols":[{' not in last  # the columns never come


def test_query_error_is_kept_for_a_request_that_runs_no_query(
    http: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.faults.query_error_next(1, path=f"{SEQ}*")
    assert http.get(sandbox.url + SEQ).json()["id"] == demo.SEQUENCE
    unknown = {"type": "category", "target": ["variable", ["template-tag", "nope"]], "value": 1}
    r = query(http, sandbox, demo.SEQUENCE, json={"parameters": [unknown]})
    assert r.status_code == 500  # refused before running: the rule stays
    assert len(sandbox.faults.pending) == 1
    assert b'"row 1"]{"data"' in query(http, sandbox, demo.SEQUENCE).content


def test_query_error_on_a_dashcard(http: requests.Session, sandbox: Sandbox) -> None:
    dash = http.get(f"{sandbox.url}/api/dashboard/{demo.OVERVIEW_DASHBOARD}").json()
    dc = next(d for d in dash["dashcards"] if d["card_id"])
    path = f"/api/dashboard/{dash['id']}/dashcard/{dc['id']}/card/{dc['card_id']}/query"
    sandbox.faults.query_error_next(1, path=path)
    r = http.post(sandbox.url + path, json={"parameters": []})
    assert r.status_code == 202
    assert b']{"data":{"rows":[],"cols":[]},"row_count":0,"status":"failed"' in r.content
    assert sandbox.requests(path=path)[-1].fault == "query_error"


# --- choosing the request, clearing, bounds -------------------------------------------------


def test_faults_pick_by_path_and_method(http: requests.Session, sandbox: Sandbox) -> None:
    sandbox.reset_log()
    sandbox.faults.echo_next(path=SEQ, method="GET")
    sandbox.faults.html_next(path=f"{SEQ}/query")
    sandbox.faults.pad_next(10, path="/api/card/*", method="GET")
    assert query(http, sandbox, demo.SEQUENCE, "api").status_code == 202  # matches nothing
    assert "text/html" in query(http, sandbox, demo.SEQUENCE).headers["Content-Type"]
    assert http.get(sandbox.url + SEQ).status_code == 500  # echo comes first for this GET
    assert http.get(sandbox.url + SEQ).content.startswith(b"\n" * 10)
    assert [r.fault for r in sandbox.log] == [None, "html", "echo", "pad"]


def test_reset_clears_every_fault(http: requests.Session, sandbox: Sandbox) -> None:
    f = sandbox.faults
    f.fail_next()
    f.cut_next()
    f.delay_next(seconds=5)
    f.delay_next(seconds=5, after_bytes=3)
    f.drip_next()
    f.pad_next(10)
    f.echo_next()
    f.html_next()
    f.query_error_next()
    kinds = {p["kind"] for p in f.pending}
    assert kinds == {"fail", "cut", "delay", "drip", "pad", "echo", "html", "query_error"}
    sandbox.reset()
    assert f.pending == []
    assert query(http, sandbox, demo.SEQUENCE).json()["row_count"] == 10
    assert sandbox.log[-1].fault is None


@pytest.mark.parametrize(
    "queue",
    [
        lambda f: f.echo_next(0),
        lambda f: f.html_next(n=-1),
        lambda f: f.delay_next(seconds=MAX_PAUSE + 1),
        lambda f: f.delay_next(seconds=-1),
        lambda f: f.delay_next(seconds=1, after_bytes=-1),
        lambda f: f.drip_next(piece=0),
        lambda f: f.drip_next(interval=MAX_PAUSE + 1),
        lambda f: f.drip_next(max_seconds=MAX_PAUSE + 1),
        lambda f: f.pad_next(0),
        lambda f: f.pad_next(MAX_PAD + 1),
        lambda f: f.query_error_next(-1),
    ],
)
def test_faults_are_bounded(sandbox: Sandbox, queue: Any) -> None:
    with pytest.raises(ValueError):
        queue(sandbox.faults)
    assert sandbox.faults.pending == []


@pytest.mark.parametrize(
    "path", ["/api/sandbox/faults", "/api/faults", "/faults", "/api/sandbox/clock"]
)
def test_faults_are_not_reachable_over_http(
    http: requests.Session, sandbox: Sandbox, path: str
) -> None:
    r = http.post(sandbox.url + path, json={"fail_next": 5})
    assert r.status_code == 404
    assert sandbox.faults.pending == []
