"""The sandbox behaves like Metabase v0.56 for everything the client touches.

Every test speaks real HTTP to the shared sandbox (127.0.0.1, OS-chosen port) with a plain
``requests.Session`` and checks exact statuses, content types, bodies and request counts.
Transport (gzip, connections, the request log) is in ``test_sandbox_transport.py``, the
faults in ``test_sandbox_faults.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests

from massive_magic.sandbox import Sandbox, demo

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
THROTTLED_WAIT = re.compile(
    r"^Too many attempts! You must wait (\d+) seconds before trying again\.$"
)
LATER = "Too many attempts! Please try again later."
BAD_PASSWORD = {"errors": {"password": "did not match stored password"}}


# --- helpers ------------------------------------------------------------------------------


def login(srv: Sandbox, username: str | None = None, password: str | None = None) -> str:
    r = requests.post(
        f"{srv.url}/api/session",
        json={"username": username or srv.username, "password": password or srv.password},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["id"]


def url(srv: Sandbox, path: str) -> str:
    return srv.url + path


def query(
    http: requests.Session, srv: Sandbox, card: int, fmt: str | None = None, **kw: Any
) -> requests.Response:
    path = f"/api/card/{card}/query" + (f"/{fmt}" if fmt else "")
    return http.post(url(srv, path), timeout=30, **kw)


def seq_param(value: Any) -> dict[str, Any]:
    return {"type": "number/=", "target": ["variable", ["template-tag", "rows"]], "value": value}


# --- login, sessions, API keys --------------------------------------------------------------


def test_login_returns_uuid_and_cookies(sandbox: Sandbox) -> None:
    r = requests.post(
        url(sandbox, "/api/session"),
        json={"username": sandbox.username, "password": sandbox.password},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    token = r.json()["id"]
    assert UUID_RE.match(token)
    assert set(r.json()) == {"id"}
    assert r.cookies["metabase.SESSION"] == token
    assert r.cookies["metabase.TIMEOUT"] == "alive"
    assert "HttpOnly" in r.headers["Set-Cookie"]
    assert sandbox.count("POST", "/api/session") == 1


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"username": "demo@massive.example", "password": "wrong"}, 401, BAD_PASSWORD),
        ({"username": "nobody@massive.example", "password": "x"}, 401, BAD_PASSWORD),
        (
            {"username": "", "password": "x"},
            400,
            {"errors": {"username": "value must be a non-blank string."}},
        ),
        (
            {"username": "   ", "password": "x"},
            400,
            {"errors": {"username": "value must be a non-blank string."}},
        ),
        (
            {"password": "x"},
            400,
            {"errors": {"username": "value must be a non-blank string."}},
        ),
        (
            {"username": "demo@massive.example", "password": ""},
            400,
            {"errors": {"password": "value must be a non-blank string."}},
        ),
    ],
)
def test_login_refusals(sandbox: Sandbox, body: dict, status: int, expected: dict) -> None:
    r = requests.post(url(sandbox, "/api/session"), json=body, timeout=10)
    assert (r.status_code, r.json()) == (status, expected)
    assert "Set-Cookie" not in r.headers


def test_login_throttle_is_exact(sandbox: Sandbox) -> None:
    sandbox.add_user("victim@partner.example", "right-password")
    sandbox.clock.freeze()

    def attempt(password: str) -> requests.Response:
        return requests.post(
            url(sandbox, "/api/session"),
            json={"username": "victim@partner.example", "password": password},
            timeout=10,
        )

    for _ in range(10):
        r = attempt("wrong")
        assert (r.status_code, r.json()) == (401, BAD_PASSWORD)
    # 11th try: refused even with the right password; 15 s * 1 ** 1.5
    r = attempt("right-password")
    assert r.status_code == 401
    assert r.json() == {
        "errors": {"username": "Too many attempts! You must wait 15 seconds before trying again."}
    }
    # that refusal was counted: 12th try waits 15 s * 2 ** 1.5 = 42.4 s
    r = attempt("right-password")
    assert THROTTLED_WAIT.match(r.json()["errors"]["username"]).group(1) == "42"
    sandbox.clock.advance(10)
    r = attempt("wrong")  # 13th: 15 * 3 ** 1.5 = 77.9 s after the 12th, 10 s gone
    assert r.json()["errors"]["username"].endswith("wait 68 seconds before trying again.")
    sandbox.clock.advance(1000)  # the displayed delay passed, still blocked
    r = attempt("right-password")
    assert (r.status_code, r.json()) == (401, {"errors": {"username": LATER}})
    # the demo user is not affected by another user name's lockout
    assert login(sandbox)
    # an hour without attempts frees the user name
    sandbox.clock.advance(3600)
    r = attempt("right-password")
    assert r.status_code == 200
    assert sandbox.count("POST", "/api/session") == 16


def test_successful_logins_are_not_counted_and_do_not_reset(sandbox: Sandbox) -> None:
    sandbox.add_user("ana@partner.example", "pw-ana")
    creds = {"username": "ana@partner.example"}
    for _ in range(9):
        requests.post(url(sandbox, "/api/session"), json={**creds, "password": "no"}, timeout=5)
    for _ in range(3):
        ok = requests.post(url(sandbox, "/api/session"), json={**creds, "password": "pw-ana"})
        assert ok.status_code == 200
    bad = requests.post(url(sandbox, "/api/session"), json={**creds, "password": "no"}, timeout=5)
    assert bad.json() == BAD_PASSWORD  # the 10th failure is still checked
    r = requests.post(url(sandbox, "/api/session"), json={**creds, "password": "pw-ana"})
    assert r.status_code == 401
    assert THROTTLED_WAIT.match(r.json()["errors"]["username"])


def test_login_throttle_per_source_address(sandbox: Sandbox) -> None:
    """50 failures from one address (any user names) lock that address, not others."""
    proxy = {"X-Forwarded-For": "203.0.113.9, 10.0.0.7"}  # the last entry counts
    for i in range(50):
        r = requests.post(
            url(sandbox, "/api/session"),
            json={"username": f"guess{i}@partner.example", "password": "x"},
            headers=proxy,
            timeout=10,
        )
        assert r.json() == BAD_PASSWORD
    creds = {"username": sandbox.username, "password": sandbox.password}
    r = requests.post(url(sandbox, "/api/session"), json=creds, headers=proxy, timeout=10)
    assert r.status_code == 401
    assert THROTTLED_WAIT.match(r.json()["errors"]["username"])
    other = {"X-Forwarded-For": "10.0.0.8"}
    assert requests.post(url(sandbox, "/api/session"), json=creds, headers=other).ok


def test_clock_helpers(sandbox: Sandbox) -> None:
    """The clock follows real time plus an offset (ordering only, no margins)."""
    before = time.time()
    sandbox.clock.advance(3600)
    now = sandbox.clock.now()
    assert before + 3600 <= now <= time.time() + 3600
    sandbox.clock.freeze(1_700_000_000)
    assert sandbox.clock.now() == 1_700_000_000
    sandbox.clock.advance(5)
    assert sandbox.clock.now() == 1_700_000_005
    sandbox.clock.reset()
    before = time.time()
    now = sandbox.clock.now()
    assert before <= now <= time.time()


def test_start_stop_and_context_manager() -> None:
    from massive_magic import sandbox as sandbox_module

    with sandbox_module.start(port=0) as srv:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.url)
        s = requests.Session()
        assert s.get(srv.url + "/api/health", timeout=5).ok  # keeps the connection open
    with pytest.raises(requests.exceptions.ConnectionError):
        s.get(srv.url + "/api/health", timeout=5)
    s.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/user/current"),
        ("GET", "/api/card"),
        ("GET", f"/api/card/{demo.DAILY_EARNINGS}"),
        ("POST", f"/api/card/{demo.DAILY_EARNINGS}/query"),
        ("POST", f"/api/card/{demo.DAILY_EARNINGS}/query/api"),
        ("GET", f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}"),
        ("GET", "/api/dashboard/"),
        ("GET", "/api/card/999999"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Metabase-Session": "not-a-session"},
        {"X-Metabase-Session": str(uuid.uuid4())},
        {"X-API-Key": "mb_wrongwrongwrong"},
        {"X-API-Key": "DemoPartnerKey0123456789abcdef"},
    ],
)
def test_unauthenticated_is_plain_text_401(
    sandbox: Sandbox, method: str, path: str, headers: dict[str, str]
) -> None:
    r = requests.request(method, url(sandbox, path), headers=headers, json={}, timeout=10)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "text/plain"
    assert r.text == "Unauthenticated"


def test_cookie_wins_over_header(sandbox: Sandbox) -> None:
    good = login(sandbox)
    stale = {"Cookie": f"metabase.SESSION={uuid.uuid4()}", "X-Metabase-Session": good}
    r = requests.get(url(sandbox, "/api/user/current"), headers=stale, timeout=10)
    assert (r.status_code, r.text) == (401, "Unauthenticated")
    fresh = {"Cookie": f"metabase.SESSION={good}", "X-Metabase-Session": "garbage"}
    r = requests.get(url(sandbox, "/api/user/current"), headers=fresh, timeout=10)
    assert r.status_code == 200
    assert r.json()["email"] == demo.DEMO_USERNAME


def test_requests_session_keeps_the_login_cookie(sandbox: Sandbox) -> None:
    """The trap of metabase-api.md §3.1: a kept cookie overrides a newer header token."""
    s = requests.Session()
    first = s.post(
        url(sandbox, "/api/session"),
        json={"username": sandbox.username, "password": sandbox.password},
    ).json()["id"]
    second = login(sandbox)
    assert s.get(url(sandbox, "/api/user/current")).status_code == 200
    s.delete(url(sandbox, "/api/session"), headers={"X-Metabase-Session": second})
    assert s.cookies.get("metabase.SESSION") in (None, "")
    assert first != second


@pytest.mark.parametrize(
    ("max_age", "advance", "status"),
    [
        (None, 14 * 86400 - 60, 200),
        (None, 14 * 86400 + 1, 401),
        (600.0, 599, 200),
        (600.0, 601, 401),
    ],
)
def test_sessions_expire_after_max_age(
    sandbox: Sandbox, max_age: float | None, advance: float, status: int
) -> None:
    if max_age is not None:
        sandbox.max_session_age = max_age
    token = login(sandbox)
    sandbox.clock.advance(advance)
    r = requests.get(
        url(sandbox, "/api/user/current"), headers={"X-Metabase-Session": token}, timeout=10
    )
    assert r.status_code == status


def test_expire_sessions_and_api_key_survive(sandbox: Sandbox) -> None:
    token = login(sandbox)
    sandbox.expire_sessions()
    r = requests.get(url(sandbox, "/api/card"), headers={"X-Metabase-Session": token})
    assert (r.status_code, r.text) == (401, "Unauthenticated")
    sandbox.clock.advance(90 * 86400)
    r = requests.get(url(sandbox, "/api/user/current"), headers={"X-API-Key": sandbox.api_key})
    assert r.status_code == 200
    assert r.json()["email"] == demo.DEMO_USERNAME
    assert sandbox.api_key.startswith("mb_")


def test_logout(sandbox: Sandbox) -> None:
    token = login(sandbox)
    headers = {"X-Metabase-Session": token}
    r = requests.delete(url(sandbox, "/api/session"), headers=headers, timeout=10)
    assert r.status_code == 204
    assert r.content == b""
    assert "metabase.SESSION=;" in r.headers["Set-Cookie"]
    assert requests.get(url(sandbox, "/api/card"), headers=headers).status_code == 401
    for h in (headers, {}):
        again = requests.delete(url(sandbox, "/api/session"), headers=h, timeout=10)
        assert (again.status_code, again.text) == (404, "Not found.")


def test_public_endpoints(sandbox: Sandbox) -> None:
    props = requests.get(url(sandbox, "/api/session/properties"), timeout=10)
    assert props.status_code == 200
    assert props.json()["version"]["tag"] == "v0.56.3"
    health = requests.get(url(sandbox, "/api/health"), timeout=10)
    assert health.json() == {"status": "ok"}


def test_current_user(http: requests.Session, sandbox: Sandbox) -> None:
    user = http.get(url(sandbox, "/api/user/current")).json()
    assert user["email"] == demo.DEMO_USERNAME
    assert user["common_name"] == "Demo Partner"
    assert user["is_superuser"] is False


# --- cards ----------------------------------------------------------------------------------


def test_card_list(http: requests.Session, sandbox: Sandbox) -> None:
    cards = http.get(url(sandbox, "/api/card")).json()
    names = [c["name"] for c in cards]
    assert names == sorted(names, key=str.lower)
    ids = {c["id"] for c in cards}
    assert demo.RESTRICTED not in ids
    assert {
        demo.DAILY_EARNINGS,
        demo.EARNINGS_FILTERED,
        demo.ALL_TYPES,
        demo.BROKEN,
        demo.LARGE,
        demo.SEQUENCE,
        demo.REQUIRED_PARAM,
    } <= ids
    for card in cards:
        assert {
            "id",
            "name",
            "description",
            "collection",
            "type",
            "display",
            "query_type",
            "parameters",
            "result_metadata",
        } <= set(card)
        assert set(card["collection"]) >= {"id", "name"}


def test_card_metadata_parameters(http: requests.Session, sandbox: Sandbox) -> None:
    card = http.get(url(sandbox, f"/api/card/{demo.EARNINGS_FILTERED}")).json()
    params = {p["slug"]: p for p in card["parameters"]}
    assert {s: (p["type"], p["name"], p["target"][0]) for s, p in params.items()} == {
        "date": ("date/all-options", "Date", "dimension"),
        "country": ("string/=", "Country", "dimension"),
        "platform": ("category", "Platform", "variable"),
        "min_earnings": ("number/=", "Min earnings", "variable"),
    }
    for slug, p in params.items():
        assert UUID_RE.match(p["id"])
        assert p["target"][1] == ["template-tag", slug]
        assert card["dataset_query"]["native"]["template-tags"][slug]["id"] == p["id"]
    assert params["date"]["default"] == "2024-01-01~2024-01-31"
    assert params["country"]["values_source_type"] == "static-list"
    assert params["country"]["values_source_config"]["values"] == list(demo.COUNTRIES)
    seq = http.get(url(sandbox, f"/api/card/{demo.SEQUENCE}")).json()["parameters"]
    assert [(p["slug"], p["type"], p["default"], p["required"]) for p in seq] == [
        ("rows", "number/=", "10", True)
    ]
    req = http.get(url(sandbox, f"/api/card/{demo.REQUIRED_PARAM}")).json()["parameters"]
    assert [(p["slug"], p["default"], p["required"]) for p in req] == [("app", None, True)]
    meta = card["result_metadata"]
    assert [c["name"] for c in meta][:2] == ["day", "app"]
    assert meta[0]["base_type"] == "type/Date"


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/api/card/999999", 404, "Not found."),
        (f"/api/card/{demo.RESTRICTED}", 403, "You don't have permissions to do that."),
        ("/api/card/999999/query", 404, "Not found."),
        (f"/api/card/{demo.RESTRICTED}/query", 403, "You don't have permissions to do that."),
        (f"/api/card/{demo.RESTRICTED}/query/csv", 403, "You don't have permissions to do that."),
        ("/api/dashboard/999", 404, "Not found."),
        ("/api/nothing-here", 404, "API endpoint does not exist."),
    ],
)
def test_not_found_and_forbidden_are_plain_text(
    http: requests.Session, sandbox: Sandbox, path: str, status: int, body: str
) -> None:
    method = "POST" if "query" in path else "GET"
    r = http.request(method, url(sandbox, path), json={})
    assert (r.status_code, r.headers["Content-Type"], r.text) == (status, "text/plain", body)


def test_admin_can_read_restricted(sandbox: Sandbox) -> None:
    token = login(sandbox, demo.ADMIN_USERNAME, "admin-" + demo.DEMO_PASSWORD)
    r = requests.get(
        url(sandbox, f"/api/card/{demo.RESTRICTED}"), headers={"X-Metabase-Session": token}
    )
    assert r.status_code == 200


# --- /query ------------------------------------------------------------------------------


def test_query_shape_and_cap(http: requests.Session, sandbox: Sandbox) -> None:
    r = query(http, sandbox, demo.DAILY_EARNINGS, json={})
    assert r.status_code == 202
    body = r.json()
    assert list(body) == [
        "data",
        "cached",
        "database_id",
        "started_at",
        "json_query",
        "average_execution_time",
        "status",
        "context",
        "row_count",
        "running_time",
    ]
    assert (body["status"], body["row_count"], body["context"]) == ("completed", 2000, "question")
    assert body["cached"] is None
    data = body["data"]
    assert list(data)[:2] == ["rows", "cols"]
    assert data["rows_truncated"] == 2000
    assert len(data["rows"]) == 2000
    assert data["results_timezone"] == "Europe/Berlin"
    assert data["rows"][0][:4] == ["2024-01-01T00:00:00+01:00", "Lumen Weather", "Android", "BR"]
    col = data["cols"][0]
    assert set(col) >= {
        "name",
        "display_name",
        "base_type",
        "effective_type",
        "semantic_type",
        "database_type",
        "source",
        "field_ref",
    }
    assert (col["name"], col["display_name"], col["base_type"]) == ("day", "Day", "type/Date")
    assert body["json_query"]["constraints"]["max-results-bare-rows"] == 2000


@pytest.mark.parametrize(
    ("n", "query_rows", "truncated"),
    [(0, 0, False), (1, 1, False), (1999, 1999, False), (2000, 2000, True), (2001, 2000, True)],
)
def test_sequence_rows_and_truncation_flag(
    http: requests.Session, sandbox: Sandbox, n: int, query_rows: int, truncated: bool
) -> None:
    body = query(http, sandbox, demo.SEQUENCE, json={"parameters": [seq_param(n)]}).json()
    assert body["row_count"] == query_rows == len(body["data"]["rows"])
    assert ("rows_truncated" in body["data"]) is truncated
    if truncated:
        assert body["data"]["rows_truncated"] == 2000
    if n:
        assert body["data"]["rows"][0] == [1, "row 1"]
    api = query(http, sandbox, demo.SEQUENCE, "api", json={"parameters": [seq_param(n)]}).json()
    assert api["row_count"] == n == len(api["data"]["rows"])
    assert "rows_truncated" not in api["data"]


def test_sequence_default_is_ten(http: requests.Session, sandbox: Sandbox) -> None:
    body = query(http, sandbox, demo.SEQUENCE).json()
    assert body["row_count"] == 10
    assert body["data"]["rows"][-1] == [10, "row 10"]


ALL_TYPES_FIRST_ROWS = {
    "Europe/Berlin": (
        "2024-01-15T00:00:00+01:00",
        "2024-01-15T10:30:00+01:00",
        "2024-01-15T10:30:00+01:00",
        "10:30:00+01:00",
        "2024-07-01T00:00:00+02:00",
    ),
    "UTC": (
        "2024-01-15T00:00:00Z",
        "2024-01-15T10:30:00Z",
        "2024-01-15T09:30:00Z",
        "10:30:00Z",
        "2024-07-01T00:00:00Z",
    ),
    "America/New_York": (
        "2024-01-15T00:00:00-05:00",
        "2024-01-15T10:30:00-05:00",
        "2024-01-15T04:30:00-05:00",
        "10:30:00-05:00",
        "2024-07-01T00:00:00-04:00",
    ),
}


@pytest.mark.parametrize("tz", sorted(ALL_TYPES_FIRST_ROWS))
def test_all_types_values_in_query(http: requests.Session, sandbox: Sandbox, tz: str) -> None:
    sandbox.report_timezone = tz
    body = query(http, sandbox, demo.ALL_TYPES).json()
    data = body["data"]
    names = [c["name"] for c in data["cols"]]
    rows = [dict(zip(names, r, strict=True)) for r in data["rows"]]
    assert data["results_timezone"] == tz
    first = rows[0]
    day, created, paid, start, july = ALL_TYPES_FIRST_ROWS[tz]
    assert (first["day"], first["created_at"], first["paid_at"], first["start_time"]) == (
        day,
        created,
        paid,
        start,
    )
    assert rows[2]["day"] == july
    assert [r["big_id"] for r in rows[:7]] == [
        1,
        9007199254740991,
        "9007199254740992",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775807",
        "-9007199254740993",
    ]
    assert [r["label"] for r in rows[:7]] == [
        "plain",
        "comma, inside",
        'quote " inside',
        "new\nline",
        "unicode ✓ ü 日本 🚀",
        "null",
        "",
    ]
    assert all(v is None for v in rows[-1].values())
    types = {c["name"]: c["base_type"] for c in data["cols"]}
    assert types["paid_at"] == "type/DateTimeWithLocalTZ"
    assert types["created_at"] == "type/DateTime"
    assert types["variant"] == "type/SnowflakeVariant"
    assert types["payload"] == "type/JSON"
    display = {c["name"]: c["display_name"] for c in data["cols"]}
    assert display["count"] == display["count_2"] == "Count"


# --- exports -------------------------------------------------------------------------------


def test_api_export_order_and_bigints(http: requests.Session, sandbox: Sandbox) -> None:
    r = query(http, sandbox, demo.ALL_TYPES, "api", stream=True)
    assert r.status_code == 202
    assert r.headers["Transfer-Encoding"] == "chunked"
    raw = r.content
    assert raw.startswith(b'{"data":{"rows":[')
    assert raw.index(b'"cols"') > raw.index(b"9223372036854775807")
    doc = json.loads(raw)
    assert list(doc["data"])[:2] == ["rows", "cols"]
    assert next(iter(doc)) == "data"
    assert doc["status"] == "completed"
    assert doc["row_count"] == 11
    assert [r[1] for r in doc["data"]["rows"][2:5]] == [
        9007199254740992,
        9007199254740993,
        9223372036854775807,
    ]
    assert "results_metadata" not in doc["data"]
    assert doc["data"]["rows"][0][6] == "2024-01-15T00:00:00+01:00"


def test_json_export(http: requests.Session, sandbox: Sandbox) -> None:
    r = query(http, sandbox, demo.ALL_TYPES, "json", data={"format_rows": "false"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert re.match(
        r'attachment; filename="all_column_types_.*\.json"', r.headers["Content-Disposition"]
    )
    rows = r.json()
    assert len(rows) == 11
    first = rows[0]
    # two columns titled "Count": zipmap keeps one key with the last value
    assert list(first) == [
        "ID",
        "Big ID",
        "Amount",
        "Ratio",
        "Label",
        "Active",
        "Day",
        "Created at",
        "Paid at",
        "Start time",
        "Payload",
        "Variant",
        "Count",
    ]
    assert first["Count"] == 100
    assert (first["Day"], first["Created at"], first["Paid at"], first["Start time"]) == (
        "2024-01-15",
        "2024-01-15T10:30:00",
        "2024-01-15T10:30:00+01:00",
        "10:30:00",
    )
    assert rows[2]["Created at"] == "2024-07-01"  # midnight LocalDateTime written as a date
    assert rows[4]["Big ID"] == 9223372036854775807


def test_json_export_format_rows(http: requests.Session, sandbox: Sandbox) -> None:
    rows = query(http, sandbox, demo.ALL_TYPES, "json", data={"format_rows": "true"}).json()
    first = rows[0]
    assert first["Amount"] == "1,234.5"
    assert first["Day"] == "January 15, 2024"
    assert first["Created at"] == "January 15, 2024, 10:30 AM"
    assert first["Big ID"] == "1"
    assert rows[4]["Big ID"] == "9,223,372,036,854,775,807"


def test_csv_export(http: requests.Session, sandbox: Sandbox) -> None:
    r = query(http, sandbox, demo.ALL_TYPES, "csv", data={"format_rows": "false"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert table[0][-2:] == ["Count", "Count"]
    assert table[0][:3] == ["ID", "Big ID", "Amount"]
    assert len(table) == 12
    assert [row[4] for row in table[1:8]] == [
        "plain",
        "comma, inside",
        'quote " inside',
        "new\nline",
        "unicode ✓ ü 日本 🚀",
        "null",
        "",
    ]
    assert table[1][5:7] == ["true", "2024-01-15"]
    assert table[-1] == [""] * 14


@pytest.mark.parametrize(("fmt", "status"), [("api", 202), ("json", 200), ("csv", 200)])
def test_exports_have_no_2000_cap(
    http: requests.Session, sandbox: Sandbox, fmt: str, status: int
) -> None:
    r = query(http, sandbox, demo.SEQUENCE, fmt, data={"parameters": json.dumps([seq_param(5000)])})
    assert r.status_code == status
    if fmt == "csv":
        assert len(r.text.splitlines()) == 5001
    elif fmt == "json":
        assert len(r.json()) == 5000
    else:
        assert r.json()["row_count"] == 5000


@pytest.mark.parametrize(("fmt", "limit"), [(None, 30), ("api", 40), ("csv", 50)])
def test_row_limits_are_settings(
    http: requests.Session, sandbox: Sandbox, fmt: str | None, limit: int
) -> None:
    assert (sandbox.query_row_limit, sandbox.export_row_limit) == (2000, 1_048_575)
    sandbox.query_row_limit, sandbox.export_row_limit = 30, limit
    r = query(http, sandbox, demo.SEQUENCE, fmt, json={"parameters": [seq_param(1000)]})
    if fmt == "csv":
        assert r.content.count(b"\n") == 1 + limit
        return
    body = r.json()
    assert body["row_count"] == limit
    assert body["data"].get("rows_truncated") == (30 if fmt is None else None)


def test_export_row_limit(http: requests.Session, sandbox: Sandbox) -> None:
    """The real 1,048,575 cap, once, on the cheapest path (numbers only, no text column)."""
    body = {"parameters": [seq_param(1_100_000)]}
    r = query(http, sandbox, demo.SEQUENCE, "api", json=body, stream=True)
    tail = b""
    for chunk in r.iter_content(1 << 20):
        tail = (tail + chunk)[-4096:]
    assert b'"row_count":1048575,' in tail


# --- parameters ----------------------------------------------------------------------------


def _country_param(card: dict[str, Any], value: Any, by: str) -> dict[str, Any]:
    p = next(p for p in card["parameters"] if p["slug"] == "country")
    if by == "id":
        return {"id": p["id"], "value": value}
    return {"type": p["type"], "target": p["target"], "value": value}


@pytest.mark.parametrize("by", ["id", "target"])
@pytest.mark.parametrize("transport", ["json", "form", "json-string"])
def test_parameters_from_body(
    http: requests.Session, sandbox: Sandbox, by: str, transport: str
) -> None:
    card = http.get(url(sandbox, f"/api/card/{demo.EARNINGS_FILTERED}")).json()
    params = [_country_param(card, ["DE", "US"], by)]
    kwargs: dict[str, Any] = {
        "json": {"json": {"parameters": params}},
        "form": {"data": {"parameters": json.dumps(params)}},
        "json-string": {"json": {"parameters": json.dumps(params)}},
    }[transport]
    for fmt in (None, "api"):
        body = query(http, sandbox, demo.EARNINGS_FILTERED, fmt, **kwargs).json()
        countries = {row[3] for row in body["data"]["rows"]}
        assert countries == {"DE", "US"}
        assert body["row_count"] == 31 * 5 * 2  # default date range: January


def test_chunked_request_body(http: requests.Session, sandbox: Sandbox) -> None:
    body = json.dumps({"parameters": [seq_param(4)]}).encode()
    r = query(http, sandbox, demo.SEQUENCE, data=iter([body[:10], body[10:]]))
    assert sandbox.log[-1].header("Transfer-Encoding") == "chunked"
    assert r.json()["row_count"] == 4
    assert http.get(url(sandbox, "/api/health")).ok  # the connection is still in sync


@pytest.mark.parametrize("fmt", [None, "api", "csv"])
def test_parameters_in_query_string_are_ignored(
    http: requests.Session, sandbox: Sandbox, fmt: str | None
) -> None:
    params = json.dumps([seq_param(3)])
    path = f"/api/card/{demo.SEQUENCE}/query" + (f"/{fmt}" if fmt else "")
    r = http.post(url(sandbox, path), params={"parameters": params})
    if fmt == "csv":
        assert len(r.text.splitlines()) == 11
    else:
        assert r.json()["row_count"] == 10  # the default, not 3


def test_null_value_means_no_filter(http: requests.Session, sandbox: Sandbox) -> None:
    card = http.get(url(sandbox, f"/api/card/{demo.EARNINGS_FILTERED}")).json()
    date = next(p for p in card["parameters"] if p["slug"] == "date")
    body = query(
        http,
        sandbox,
        demo.EARNINGS_FILTERED,
        "api",
        json={"parameters": [{"id": date["id"], "value": None}]},
    ).json()
    assert body["row_count"] == demo.DAILY_EARNINGS_ROWS


@pytest.mark.parametrize(
    ("params", "rows"),
    [
        (
            [
                {
                    "type": "date/range",
                    "target": ["dimension", ["template-tag", "date"]],
                    "value": "2024-02-01~2024-02-03",
                }
            ],
            3 * 40,
        ),
        (
            [
                {
                    "type": "date/single",
                    "target": ["dimension", ["template-tag", "date"]],
                    "value": "2024-03-05",
                }
            ],
            40,
        ),
        (
            [
                {
                    "type": "date/month-year",
                    "target": ["dimension", ["template-tag", "date"]],
                    "value": "2024-02",
                }
            ],
            29 * 40,
        ),
        (
            [
                {
                    "type": "date/quarter-year",
                    "target": ["dimension", ["template-tag", "date"]],
                    "value": "Q2-2024",
                }
            ],
            91 * 40,
        ),
        (
            [
                {
                    "type": "category",
                    "target": ["variable", ["template-tag", "platform"]],
                    "value": "macOS",
                }
            ],
            31 * 8,
        ),
        (
            [
                {
                    "type": "string/=",
                    "target": ["variable", ["template-tag", "platform"]],
                    "value": ["Windows"],
                }
            ],
            31 * 16,
        ),
    ],
)
def test_filter_parameters(
    http: requests.Session, sandbox: Sandbox, params: list[dict[str, Any]], rows: int
) -> None:
    body = query(http, sandbox, demo.EARNINGS_FILTERED, "api", json={"parameters": params}).json()
    assert body["status"] == "completed"
    assert body["row_count"] == rows


def test_min_earnings_filters(http: requests.Session, sandbox: Sandbox) -> None:
    p = {"type": "number/=", "target": ["variable", ["template-tag", "min_earnings"]], "value": 50}
    body = query(http, sandbox, demo.EARNINGS_FILTERED, json={"parameters": [p]}).json()
    assert body["row_count"] > 0
    assert min(row[5] for row in body["data"]["rows"]) >= 50


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "status"), [(None, 202), ("api", 202), ("json", 200), ("csv", 200)]
)
def test_broken_card_fails_the_metabase_way(
    http: requests.Session, sandbox: Sandbox, fmt: str | None, status: int
) -> None:
    r = query(http, sandbox, demo.BROKEN, fmt)
    assert r.status_code == status
    body = json.loads(r.content)
    assert body["status"] == "failed"
    assert body["error_type"] == "invalid-query"
    assert body["error"].startswith('ERROR: relation "partner_payoutz" does not exist')
    assert body["data"] == {"rows": [], "cols": []}
    assert body["row_count"] == 0
    assert ("json_query" in body) is (fmt in (None, "api"))


@pytest.mark.parametrize(
    ("card", "params", "label"),
    [
        (demo.REQUIRED_PARAM, [], "App"),
        (demo.SEQUENCE, [seq_param(None)], "Rows"),
    ],
)
@pytest.mark.parametrize("fmt", [None, "api"])
def test_missing_required_parameter(
    http: requests.Session,
    sandbox: Sandbox,
    card: int,
    params: list[Any],
    label: str,
    fmt: str | None,
) -> None:
    r = query(http, sandbox, card, fmt, json={"parameters": params})
    assert r.status_code == 202
    body = r.json()
    assert (body["status"], body["error_type"]) == ("failed", "missing-required-parameter")
    assert body["error"] == f"You'll need to pick a value for '{label}' before this query can run."


def test_required_parameter_given(http: requests.Session, sandbox: Sandbox) -> None:
    p = {"type": "category", "target": ["variable", ["template-tag", "app"]], "value": "PuzzleDash"}
    body = query(http, sandbox, demo.REQUIRED_PARAM, "api", json={"parameters": [p]}).json()
    assert body["row_count"] == 366 * 2 * 8
    assert {row[1] for row in body["data"]["rows"]} == {"PuzzleDash"}


@pytest.mark.parametrize("fmt", [None, "api", "json"])
def test_unknown_parameter_is_500(
    http: requests.Session, sandbox: Sandbox, fmt: str | None
) -> None:
    p = {"type": "category", "target": ["variable", ["template-tag", "since_date"]], "value": "x"}
    r = query(http, sandbox, demo.SEQUENCE, fmt, json={"parameters": [p]})
    assert r.status_code == 500
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["message"] == (
        f'Invalid parameter: Card {demo.SEQUENCE} does not have a template tag named "since_date".'
    )
    assert body["allowed-parameters"] == ["rows"]
    assert body["invalid-parameter"] == p
    assert {"via", "trace"} <= set(body)


def test_parameter_type_not_allowed_is_500(http: requests.Session, sandbox: Sandbox) -> None:
    p = {"type": "number/=", "target": ["dimension", ["template-tag", "country"]], "value": [1]}
    r = query(http, sandbox, demo.EARNINGS_FILTERED, json={"parameters": [p]})
    assert r.status_code == 500
    assert r.json()["message"].startswith(
        'Invalid parameter type :number/= for parameter "country". Parameter type must be one of:'
    )


def test_unparseable_date_is_a_failed_query(http: requests.Session, sandbox: Sandbox) -> None:
    p = {
        "type": "date/all-options",
        "target": ["dimension", ["template-tag", "date"]],
        "value": "soon",
    }
    body = query(http, sandbox, demo.EARNINGS_FILTERED, json={"parameters": [p]}).json()
    assert (body["status"], body["error_type"]) == ("failed", "invalid-parameter")


# --- dashboards ---------------------------------------------------------------------------------


def test_dashboard(http: requests.Session, sandbox: Sandbox) -> None:
    dash = http.get(url(sandbox, f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}")).json()
    assert dash["name"] == "Partner overview"
    assert [(p["id"], p["slug"], p["type"]) for p in dash["parameters"]] == [
        (demo.DASH_DATE_PARAM, "date", "date/all-options"),
        (demo.DASH_COUNTRY_PARAM, "country", "string/="),
    ]
    cards = {dc["id"]: dc for dc in dash["dashcards"]}
    assert {dc: c["card_id"] for dc, c in cards.items()} == {
        demo.DASHCARD_FILTERED: demo.EARNINGS_FILTERED,
        demo.DASHCARD_DAILY: demo.DAILY_EARNINGS,
        demo.DASHCARD_BROKEN: demo.BROKEN,
        demo.DASHCARD_TEXT: None,
    }
    filtered = cards[demo.DASHCARD_FILTERED]
    assert filtered["card"]["name"] == "Earnings by country (filtered)"
    assert {m["parameter_id"]: m["target"] for m in filtered["parameter_mappings"]} == {
        demo.DASH_DATE_PARAM: ["dimension", ["template-tag", "date"]],
        demo.DASH_COUNTRY_PARAM: ["dimension", ["template-tag", "country"]],
    }
    assert {"row", "col", "size_x", "size_y"} <= set(filtered)
    assert cards[demo.DASHCARD_TEXT]["visualization_settings"]["text"].startswith("## Partner")


@pytest.mark.parametrize("path", ["/api/dashboard/?f=all", "/api/dashboard/", "/api/dashboard"])
def test_dashboard_list(http: requests.Session, sandbox: Sandbox, path: str) -> None:
    """What the client completes ``%massive_dashboard`` from (``f=all`` is the default)."""
    dashes = http.get(url(sandbox, path)).json()
    assert [(d["id"], d["name"]) for d in dashes] == [(demo.OVERVIEW_DASHBOARD, "Partner overview")]
    [dash] = dashes
    assert dash["archived"] is False
    assert dash["collection_id"] == 7
    assert dash["creator"]["id"] == dash["creator_id"]
    assert [p["slug"] for p in dash["parameters"]] == ["date", "country"]
    assert "dashcards" not in dash  # a list holds the rows, not the cards on them


def test_dashboard_list_filters(http: requests.Session, sandbox: Sandbox) -> None:
    """``mine`` (the demo user made none) and ``archived`` (none is) are empty; anything
    else is refused as Metabase's schema does."""
    for mode in ("mine", "archived"):
        assert http.get(url(sandbox, f"/api/dashboard/?f={mode}")).json() == []
    refused = http.get(url(sandbox, "/api/dashboard/?f=everything"))
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"f": "nullable enum of all, mine, archived"}


def _dashcard_query(
    http: requests.Session, sandbox: Sandbox, dashcard: int, card: int, params: list[Any]
) -> requests.Response:
    path = f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}/dashcard/{dashcard}/card/{card}/query"
    return http.post(url(sandbox, path), json={"parameters": params})


@pytest.mark.parametrize(
    ("params", "rows", "countries"),
    [
        ([], 91 * 40, set(demo.COUNTRIES)),  # dashboard default: Q1 2024
        ([{"id": demo.DASH_COUNTRY_PARAM, "value": "DE"}], 91 * 5, {"DE"}),
        ([{"id": demo.DASH_COUNTRY_PARAM, "value": ["DE", "BR"]}], 91 * 10, {"DE", "BR"}),
        (
            [
                {"id": demo.DASH_DATE_PARAM, "value": "2024-05-01~2024-05-02"},
                {"id": demo.DASH_COUNTRY_PARAM, "value": ["US"]},
            ],
            2 * 5,
            {"US"},
        ),
    ],
)
def test_dashcard_query_applies_filters(
    http: requests.Session, sandbox: Sandbox, params: list[Any], rows: int, countries: set[str]
) -> None:
    r = _dashcard_query(http, sandbox, demo.DASHCARD_FILTERED, demo.EARNINGS_FILTERED, params)
    assert r.status_code == 202
    body = r.json()
    assert body["context"] == "dashboard"
    assert body["row_count"] == min(rows, 2000)
    assert ("rows_truncated" in body["data"]) is (rows >= 2000)
    assert {row[3] for row in body["data"]["rows"]} <= countries


@pytest.mark.parametrize(
    ("dashcard", "card", "params", "status", "text"),
    [
        (
            demo.DASHCARD_FILTERED,
            demo.EARNINGS_FILTERED,
            [{"id": "nope", "value": 1}],
            400,
            'Dashboard does not have a parameter with ID "nope".',
        ),
        (demo.DASHCARD_FILTERED, demo.DAILY_EARNINGS, [], 404, "Not found."),
        (999, demo.DAILY_EARNINGS, [], 404, "Not found."),
    ],
)
def test_dashcard_query_errors(
    http: requests.Session,
    sandbox: Sandbox,
    dashcard: int,
    card: int,
    params: list[Any],
    status: int,
    text: str,
) -> None:
    r = _dashcard_query(http, sandbox, dashcard, card, params)
    assert (r.status_code, r.text) == (status, text)


def test_dashcard_broken_card(http: requests.Session, sandbox: Sandbox) -> None:
    r = _dashcard_query(http, sandbox, demo.DASHCARD_BROKEN, demo.BROKEN, [])
    assert (r.status_code, r.json()["status"]) == (202, "failed")


# --- helpers for other suites -----------------------------------------------------------------


def test_add_card(http: requests.Session, sandbox: Sandbox) -> None:
    cid = sandbox.add_card(
        "Payouts",
        [
            {"name": "paid_on", "base_type": "type/Date", "display_name": "Paid on"},
            ("amount", "type/Decimal"),
            ("note", "type/Text"),
        ],
        [[dt.date(2024, 2, 1), 12.5, "first"], [None, None, None]],
    )
    assert cid >= 900
    body = query(http, sandbox, cid).json()
    assert body["data"]["rows"] == [
        ["2024-02-01T00:00:00+01:00", 12.5, "first"],
        [None, None, None],
    ]
    assert [c["display_name"] for c in body["data"]["cols"]] == ["Paid on", "amount", "note"]
    sandbox.reset()
    assert http.get(url(sandbox, f"/api/card/{cid}")).status_code == 404


def test_add_card_with_parameter_and_error(http: requests.Session, sandbox: Sandbox) -> None:
    cid = sandbox.add_card(
        "Echo",
        [("n", "type/Integer")],
        parameters=[{"name": "n", "type": "number", "default": "3"}],
        run=lambda values: [[int(values["n"])]],
    )
    assert query(http, sandbox, cid).json()["data"]["rows"] == [[3]]
    broken = sandbox.add_card("Down", [("x", "type/Integer")], error="warehouse is down")
    body = query(http, sandbox, broken).json()
    assert (body["status"], body["error"]) == ("failed", "warehouse is down")


def test_module_main_serves(tmp_path: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "massive_magic.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
        assert match, first
        lines = [proc.stdout.readline() for _ in range(2)]
        assert demo.DEMO_USERNAME in lines[0]
        assert requests.get(match.group(1) + "/api/health", timeout=10).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
