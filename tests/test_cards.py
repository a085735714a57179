"""Client.card over real HTTP against the sandbox: completeness, types, errors, provenance."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest

from massive_magic import Client
from massive_magic.errors import (
    AccessDenied,
    BadCardRef,
    CardNotFound,
    ConfigError,
    IncompleteResultWarning,
    NextStep,
    ParameterError,
    QueryFailed,
    ResponseError,
    Step,
)
from massive_magic.reader import EXPORT_ROW_CAP
from massive_magic.sandbox import demo


def seq(mb: Client, rows: int, **kwargs: Any) -> pd.DataFrame:
    return mb.card(demo.SEQUENCE, {"rows": rows}, **kwargs)


def posts(srv: Any, card: int, suffix: str = "") -> int:
    return srv.count("POST", f"/api/card/{card}/query{suffix}")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so progress lines are drawn into it."""

    def isatty(self) -> bool:
        return True


@contextmanager
def local_server(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 (port 0) for answers the sandbox never gives."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            answer(self)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer(self)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def local_client(url: str, tmp_path: Path, **kwargs: Any) -> Client:
    return Client(url, api_key="mb_local", cache_dir=tmp_path, progress=False, **kwargs)


LOCAL_CARD = b'{"id": 1, "name": "Local"}'


# -- completeness at the 2,000-row cap ---------------------------------------------------


@pytest.mark.parametrize("rows", [0, 1, 1_999, 2_000, 2_001, 5_000])
def test_one_request_whatever_the_size(srv: Any, client: Client, rows: int) -> None:
    """The api export first: one request, the query runs once, no gap at the cap."""
    client.card_info(demo.SEQUENCE)  # declarations cached: count only the runs
    srv.reset_log()
    df = seq(client, rows)
    assert len(df) == rows
    assert list(df.columns) == ["n", "label"]
    assert str(df["n"].dtype) == "Int64" and str(df["label"].dtype) == "string"
    assert df["n"].tolist() == list(range(1, rows + 1))
    if rows:
        assert df["label"].iloc[-1] == f"row {rows}"
    assert [(r.method, r.path) for r in srv.log] == [
        ("POST", f"/api/card/{demo.SEQUENCE}/query/api")
    ]
    assert srv.log[0].complete
    meta = df.attrs["massive"]
    assert meta["source"] == "api"
    assert meta["row_count"] == rows
    assert meta["truncated"] is False
    assert meta["results_timezone"] == srv.report_timezone


@pytest.mark.parametrize(
    ("rows", "limit", "exports"), [(1_999, 2_000, 0), (2_000, 2_000, 0), (5_000, 1_500, 0)]
)
def test_small_limits_use_query(
    srv: Any, client: Client, rows: int, limit: int, exports: int
) -> None:
    """A limit under the cap: /query answers rows and cols at once, from its cache."""
    client.card_info(demo.SEQUENCE)
    srv.reset_log()
    df = seq(client, rows, limit=limit)
    assert df["n"].tolist() == list(range(1, min(rows, limit) + 1))
    assert [(r.method, r.path) for r in srv.log] == [("POST", f"/api/card/{demo.SEQUENCE}/query")]
    assert df.attrs["massive"]["source"] == "query"


def test_any_server_cap_is_followed(srv: Any, client: Client) -> None:
    """The flag, not the number 2,000, decides (aggregated questions cap at 10,000)."""
    client.card_info(demo.SEQUENCE)
    srv.query_row_limit = 10
    srv.reset_log()
    df = seq(client, 50, limit=40)  # /query (10 rows, flagged), then the api export
    assert df["n"].tolist() == list(range(1, 41))
    assert posts(srv, demo.SEQUENCE) == 1
    assert posts(srv, demo.SEQUENCE, "/api") == 1
    assert df.attrs["massive"]["source"] == "api"
    assert seq(client, 50)["n"].tolist() == list(range(1, 51))


def test_small_card_is_one_round_trip(srv: Any, client: Client) -> None:
    """First call: the query and the name lookup, concurrently; then one request."""
    df = client.card(demo.ALL_TYPES)
    assert len(df) == 11
    assert sorted((r.method, r.path) for r in srv.log) == [
        ("GET", f"/api/card/{demo.ALL_TYPES}"),
        ("POST", f"/api/card/{demo.ALL_TYPES}/query/api"),
    ]
    srv.reset_log()
    client.card(demo.ALL_TYPES)
    assert [(r.method, r.path) for r in srv.log] == [
        ("POST", f"/api/card/{demo.ALL_TYPES}/query/api")
    ]


def test_export_matches_the_query_answer_for_the_same_rows(client: Client) -> None:
    """Rows from /query and from the api export (typed after the rows) convert alike."""
    small = seq(client, 1_999, limit=1_999)
    big = seq(client, 2_500)
    assert small.attrs["massive"]["source"] == "query"
    assert big.attrs["massive"]["source"] == "api"
    pd.testing.assert_frame_equal(big.head(1_999), small, check_like=False)
    assert big.dtypes.to_dict() == small.dtypes.to_dict()
    for ref in (demo.ALL_TYPES, demo.DAILY_EARNINGS):
        via_query = client.card(ref, limit=1_000)
        via_api = client.card(ref).head(1_000)
        assert via_query.attrs["massive"]["source"] == "query"
        pd.testing.assert_frame_equal(via_api, via_query, check_exact=True)


def test_large_daily_card_through_the_export(srv: Any, client: Client) -> None:
    df = client.card(demo.DAILY_EARNINGS)
    assert len(df) == demo.DAILY_EARNINGS_ROWS
    assert posts(srv, demo.DAILY_EARNINGS, "/api") == 1
    assert df["day"].iloc[0] == dt.date(2024, 1, 1) or df["day"].iloc[0] == pd.Timestamp(
        "2024-01-01"
    )
    assert df.attrs["massive"]["source"] == "api"


# -- limit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "limit", "queries", "exports"),
    [
        (1_500, 10, 1, 0),
        (5_000, 10, 1, 0),
        (5_000, 3_000, 1, 1),  # the export stops at the limit; /query gives the cols
        (3_000, 5_000, 0, 1),  # the export ends first: its tail has the cols
        (3_000, 3_000, 0, 1),
        (100, 500, 1, 0),
        (5_000, 0, 1, 0),
    ],
)
def test_limit(srv: Any, client: Client, rows: int, limit: int, queries: int, exports: int) -> None:
    client.card_info(demo.SEQUENCE)
    srv.reset_log()
    df = seq(client, rows, limit=limit)
    assert len(df) == min(rows, limit)
    assert list(df.columns) == ["n", "label"]
    assert str(df["n"].dtype) == "Int64"
    if len(df):
        assert df["n"].iloc[-1] == min(rows, limit)
    assert posts(srv, demo.SEQUENCE) == queries
    assert posts(srv, demo.SEQUENCE, "/api") == exports
    assert len(srv.log) == queries + exports
    assert df.attrs["massive"]["limit"] == limit


def test_limit_stops_reading_the_export(srv: Any, client: Client) -> None:
    client.card_info(demo.LARGE)
    srv.reset_log()
    df = client.card(demo.LARGE, limit=2_500)
    assert len(df) == 2_500
    assert df["session_id"].notna().all()
    export = [r for r in srv.log if r.path.endswith("/query/api")]
    assert len(export) == 1
    # the server saw the connection go away long before the million rows were written
    assert not export[0].complete
    assert posts(srv, demo.LARGE) == 1  # the columns, which follow the rows in the export


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True, np.True_, np.int64(-1), np.float64(5)])
def test_bad_limit(client: Client, bad: Any) -> None:
    with pytest.raises(ConfigError, match="limit"):
        client.card(demo.ALL_TYPES, limit=bad)


@pytest.mark.parametrize("limit", [np.int64(5), np.int32(5), np.uint16(5)])
def test_numpy_limit(srv: Any, client: Client, limit: Any) -> None:
    df = client.card(demo.ALL_TYPES, limit=limit)
    assert len(df) == 5
    assert df.attrs["massive"]["limit"] == 5 and type(df.attrs["massive"]["limit"]) is int


# -- refresh -----------------------------------------------------------------------------


def test_refresh_ignores_the_cache_and_rereads_declarations(srv: Any, client: Client) -> None:
    seq(client, 5, limit=100)  # a small limit: /query, which has a cache
    seq(client, 5, limit=100)
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    bodies = [json.loads(r.body) for r in srv.log if r.path.endswith("/query")]
    assert [b["ignore_cache"] for b in bodies] == [False, False]
    srv.reset_log()
    seq(client, 5, limit=100, refresh=True)
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    [request] = [r for r in srv.log if r.path.endswith("/query")]
    assert json.loads(request.body)["ignore_cache"] is True
    srv.reset_log()
    seq(client, 5, refresh=True)  # the export: always run afresh, declarations re-read
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    assert posts(srv, demo.SEQUENCE, "/api") == 1


# -- references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        demo.ALL_TYPES,
        str(demo.ALL_TYPES),
        f"{demo.ALL_TYPES}-all-column-types",
        "{url}/question/{id}-all-column-types",
        "{url}/question/{id}",
        "{url}/question/{id}-all-column-types#bar",  # a URL's filters: see test_info.py
        "{url}/card/{id}",
        "{url}/model/{id}-as-a-model",
        "/question/{id}-x",
    ],
)
def test_every_reference_form(srv: Any, client: Client, ref: Any) -> None:
    if isinstance(ref, str):
        ref = ref.format(url=srv.url, id=demo.ALL_TYPES)
    df = client.card(ref)
    assert df.attrs["massive"]["card_id"] == demo.ALL_TYPES
    assert len(df) == 11


@pytest.mark.parametrize(
    "ref", ["{url}/dashboard/12-overview", "daily", 0, -3, None, 4.5, "{url}/question#eyJk"]
)
def test_bad_references_send_nothing(srv: Any, client: Client, ref: Any) -> None:
    if isinstance(ref, str):
        ref = ref.format(url=srv.url)
    with pytest.raises(BadCardRef):
        client.card(ref)
    assert srv.log == []


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, 10])
def test_card_not_found(srv: Any, client: Client, limit: int | None) -> None:
    with pytest.raises(CardNotFound) as info:
        client.card(999, limit=limit)
    message = str(info.value)
    assert message.startswith(f"Card 999 not found on {srv.url}.")
    assert "/question/<id>" in message and "Client.cards()" in message
    assert info.value.card_id == 999
    assert srv.count("POST", "/api/card/999/query/csv") == 0


def test_access_denied(srv: Any, client: Client) -> None:
    with pytest.raises(AccessDenied, match=f"card {demo.RESTRICTED}.*403.*admin"):
        client.card(demo.RESTRICTED)


def test_query_failed_carries_metabase_error(client: Client) -> None:
    with pytest.raises(QueryFailed) as info:
        client.card(demo.BROKEN)
    error = info.value
    assert error.error_type == "invalid-query"
    assert error.error is not None and 'relation "partner_payoutz" does not exist' in error.error
    assert error.card_id == demo.BROKEN
    assert "partner_payoutz" in str(error)
    assert "Open the card in Metabase" in str(error)


def test_missing_required_parameter_is_the_servers_message(client: Client) -> None:
    with pytest.raises(QueryFailed) as info:
        client.card(demo.SEQUENCE, {"rows": None})
    assert info.value.error_type == "missing-required-parameter"
    assert "pick a value for 'Rows'" in str(info.value)
    assert "card_info" in str(info.value)


@pytest.mark.parametrize(("suffix", "limit"), [("", 5), ("/api", None)])
def test_cut_query_body_is_an_error(
    srv: Any, client: Client, suffix: str, limit: int | None
) -> None:
    srv.faults.cut_next(path=f"/api/card/{demo.ALL_TYPES}/query{suffix}")
    with pytest.raises(ResponseError, match=r"run it again|try again"):
        client.card(demo.ALL_TYPES, limit=limit)


def test_cut_export_body_is_an_error_not_a_shorter_frame(srv: Any, client: Client) -> None:
    client.card_info(demo.SEQUENCE)
    srv.faults.cut_next(path=f"/api/card/{demo.SEQUENCE}/query/api")
    with pytest.raises(ResponseError):
        seq(client, 50_000)
    assert len(seq(client, 50_000)) == 50_000  # the next run is complete


@pytest.mark.slow  # seconds of real waiting: out of the fast loop
def test_proxy_error_page_after_retries(srv: Any, client: Client) -> None:
    srv.faults.fail_next(n=10, status=502, path=f"/api/card/{demo.ALL_TYPES}/query/api")
    with pytest.raises(ResponseError, match="502"):
        client.card(demo.ALL_TYPES)
    assert posts(srv, demo.ALL_TYPES) == 0  # a 502 is not a refusal of the export


@pytest.mark.parametrize("status", [404, 400, 405, 500, 501])
def test_refused_api_export_falls_back_to_csv(srv: Any, client: Client, status: int) -> None:
    client.card_info(demo.SEQUENCE)
    expected = seq(client, 3_000)
    srv.reset_log()
    srv.faults.fail_next(status=status, path=f"/api/card/{demo.SEQUENCE}/query/api")
    df = seq(client, 3_000)
    assert [r.path.rsplit("/", 1)[-1] for r in srv.log] == ["api", "query", "csv"]
    assert df.attrs["massive"]["source"] == "csv"
    pd.testing.assert_frame_equal(df, expected)


def test_refused_api_export_under_the_cap_is_one_query(srv: Any, client: Client) -> None:
    client.card_info(demo.SEQUENCE)
    srv.reset_log()
    srv.faults.fail_next(status=404, path=f"/api/card/{demo.SEQUENCE}/query/api")
    df = seq(client, 1_999)
    assert df["n"].tolist() == list(range(1, 2_000))
    assert [r.path.rsplit("/", 1)[-1] for r in srv.log] == ["api", "query"]
    assert df.attrs["massive"]["source"] == "query"


def test_csv_fallback_of_every_type(srv: Any, client: Client) -> None:
    """The csv path keeps names and dtypes of the api path (first answer's cols)."""
    srv.faults.fail_next(status=404, path=f"/api/card/{demo.DAILY_EARNINGS}/query/api")
    via_csv = client.card(demo.DAILY_EARNINGS)
    via_api = client.card(demo.DAILY_EARNINGS)
    assert via_csv.attrs["massive"]["source"] == "csv"
    assert via_api.attrs["massive"]["source"] == "api"
    pd.testing.assert_frame_equal(via_csv, via_api)


@pytest.mark.slow  # seconds of real waiting: out of the fast loop
def test_export_cap_warns(srv: Any, client: Client) -> None:
    """A result of exactly the export maximum may be missing rows: say so."""
    client.card_info(demo.SEQUENCE)
    with pytest.warns(IncompleteResultWarning, match="export maximum"):
        df = seq(client, EXPORT_ROW_CAP)
    assert len(df) == EXPORT_ROW_CAP
    assert df.attrs["massive"]["truncated"] is True


# -- provenance --------------------------------------------------------------------------


def test_provenance(srv: Any, client: Client) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    df = client.card(demo.SEQUENCE, {"Rows": 3})
    meta = df.attrs["massive"]
    assert meta["url"] == srv.url
    assert meta["card_id"] == demo.SEQUENCE
    assert meta["name"] == "Sequence"  # known: the declarations were read for the parameter
    assert meta["parameters"] == [
        {
            "id": meta["parameters"][0]["id"],
            "type": "number/=",
            "target": ["variable", ["template-tag", "rows"]],
            "value": 3,
        }
    ]
    assert meta["row_count"] == 3
    fetched = dt.datetime.fromisoformat(meta["fetched_at"].replace("Z", "+00:00"))
    assert before <= fetched <= dt.datetime.now(dt.timezone.utc)
    assert isinstance(meta["elapsed"], float) and meta["elapsed"] >= 0
    assert meta["source"] == "api"
    assert meta["truncated"] is False


def test_name_is_looked_up_alongside_the_first_query(srv: Any, client: Client) -> None:
    """First call: GET /api/card/:id runs concurrently with the query; then cached."""
    delay = 1.0
    srv.faults.delay_next(seconds=delay, path=f"/api/card/{demo.ALL_TYPES}")
    srv.faults.delay_next(seconds=delay, path=f"/api/card/{demo.ALL_TYPES}/query/api")
    df = client.card(demo.ALL_TYPES)
    assert df.attrs["massive"]["name"] == "All column types"
    assert srv.count("GET", f"/api/card/{demo.ALL_TYPES}") == 1
    [lookup] = srv.requests("GET", f"/api/card/{demo.ALL_TYPES}")
    [query] = srv.requests("POST", f"/api/card/{demo.ALL_TYPES}/query/api")
    # Each arrived before the other could be answered (each was held ``delay`` s):
    # one round trip of latency, not two in a row.
    assert query.at < lookup.at + delay and lookup.at < query.at + delay
    assert lookup.query == "ignore_view=true"  # not in the user's "recently viewed"
    srv.reset_log()
    again = client.card(demo.ALL_TYPES)
    assert again.attrs["massive"]["name"] == "All column types"
    assert len(srv.log) == 1
    assert client.card_info(demo.ALL_TYPES)["name"] == "All column types"
    assert len(srv.log) == 1  # the metadata is cached too


def test_a_read_starts_at_most_two_threads(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body reader, and one thread beside it (the name lookup, then progress redraws)."""
    started: list[str] = []
    start = threading.Thread.start

    def recording(thread: threading.Thread) -> None:
        started.append(f"{type(thread).__name__}:{thread.name}")
        start(thread)

    monkeypatch.setattr(sys, "stderr", Terminal())
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=True) as mb:
        mb.login()
        monkeypatch.setattr(threading.Thread, "start", recording)
        mb.card(demo.ALL_TYPES)  # first call: the name is looked up
        ours = [name for name in started if ":massive-" in name or "Monitor" in name]
        assert ours == ["Thread:massive-aside", "Thread:massive-read"]
        started.clear()
        mb.progress = False
        mb.card(demo.ALL_TYPES)  # the name is known, no progress line: the reader only
        assert [name for name in started if ":massive-" in name] == ["Thread:massive-read"]


def test_a_failed_name_lookup_leaves_the_name_none(srv: Any, client: Client) -> None:
    srv.faults.fail_next(status=404, path=f"/api/card/{demo.ALL_TYPES}")
    df = client.card(demo.ALL_TYPES)
    assert len(df) == 11
    assert df.attrs["massive"]["name"] is None
    assert client.card(demo.ALL_TYPES).attrs["massive"]["name"] == "All column types"


def test_the_query_error_wins_over_the_lookup_error(srv: Any, client: Client) -> None:
    srv.faults.fail_next(status=404, path=f"/api/card/{demo.BROKEN}")
    with pytest.raises(QueryFailed, match="partner_payoutz"):
        client.card(demo.BROKEN)
    with pytest.raises(AccessDenied):  # both fail alike: the query's own error
        client.card(demo.RESTRICTED)
    assert srv.count("GET", f"/api/card/{demo.RESTRICTED}") == 1


# -- progress ----------------------------------------------------------------------------


@pytest.mark.parametrize("progress", [True, False])
def test_progress_on_and_off(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progress: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=progress) as mb:
        mb.login()
        srv.faults.delay_next(seconds=1.6, path=f"/api/card/{demo.ALL_TYPES}/query/api")
        df = mb.card(demo.ALL_TYPES)
        quick = mb.card(demo.ALL_TYPES)
    assert len(df) == len(quick) == 11
    out = terminal.getvalue()
    if progress:
        # a line for the slow read only, named once the lookup brought the name, left
        # behind with its final counts
        final = out.rstrip("\n").rsplit("\r", 1)[-1]
        assert final.startswith("All column types: 11 rows, ")
        assert " kB, 00:0" in final
        assert out.count("\n") == 1
    else:
        assert out == ""


def test_progress_is_quiet_for_fast_fetches(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=True) as mb:
        mb.card(demo.ALL_TYPES)
    assert terminal.getvalue() == ""


def test_no_progress_into_a_pipe(srv: Any, tmp_path: Path, capsys: Any) -> None:
    """A redirected stderr (a log, CI) outside a notebook gets no progress line at all."""
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=True) as mb:
        srv.faults.delay_next(seconds=1.2, path=f"/api/card/{demo.ALL_TYPES}/query/api")
        assert len(mb.card(demo.ALL_TYPES)) == 11
    assert capsys.readouterr().err == ""


def test_a_failed_read_leaves_no_progress_line(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=True) as mb:
        mb.card_info(demo.BROKEN)  # the name is known: no lookup beside the read
        srv.faults.delay_next(seconds=1.4, path=f"/api/card/{demo.BROKEN}/query/api")
        with pytest.raises(QueryFailed):
            mb.card(demo.BROKEN)
    out = terminal.getvalue()
    assert "Payout reconciliation" in out  # the line was drawn while waiting...
    assert "\n" not in out and out.endswith("\r")  # ...and wiped at the end
    assert out.rstrip("\r").rsplit("\r", 1)[-1].strip() == ""


def test_no_warning_on_normal_fetch(client: Client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.card(demo.ALL_TYPES)


def test_transport_query_body_and_export_form(srv: Any, client: Client) -> None:
    """Parameters go in the JSON body (/query) and a form field (exports), never the URL."""
    srv.query_row_limit = 10
    seq(client, 2_100, limit=1_000)  # /query, flagged at 10 rows, then the api export
    query, export = [r for r in srv.log if r.method == "POST"]
    assert query.header("Content-Type") == "application/json"
    assert json.loads(query.body)["parameters"][0]["value"] == 2_100
    assert export.header("Content-Type") == "application/x-www-form-urlencoded"
    form = parse_qs(export.body.decode())
    assert json.loads(form["parameters"][0])[0]["value"] == 2_100
    assert form["format_rows"] == ["false"]
    srv.reset_log()
    seq(client, 2_100)
    [export] = srv.log
    assert export.path.endswith("/query/api")
    assert parse_qs(export.body.decode())["parameters"] == form["parameters"]
    assert all(r.query == "" for r in srv.log if r.method == "POST")
    assert not any("parameters" in r.query for r in srv.log)


# -- stale parameter declarations ----------------------------------------------------------


def _count_card(srv: Any, tag: str, card_id: int | None = None) -> int:
    def run(values: dict[str, Any]) -> list[list[Any]]:
        return [[i] for i in range(1, int(values[tag] or 0) + 1)]

    return srv.add_card(
        "Counter",
        [("n", "type/Integer")],
        card_id=card_id,
        parameters=[{"name": tag, "type": "number"}],
        run=run,
    )


@pytest.mark.parametrize("limit", [None, 10])
def test_stale_declarations_ask_for_refresh(srv: Any, client: Client, limit: int | None) -> None:
    cid = _count_card(srv, "rows")
    assert client.card(cid, {"rows": 3}, limit=limit)["n"].tolist() == [1, 2, 3]
    _count_card(srv, "how_many", card_id=cid)  # the card is edited in Metabase
    srv.reset_log()
    with pytest.raises(ParameterError) as info:
        client.card(cid, {"rows": 3}, limit=limit)
    message = str(info.value)
    assert f"Card {cid}" in message and "parameters changed" in message
    assert "refresh=True" in message and "Invalid parameter" in message
    assert isinstance(info.value.__cause__, ResponseError)
    assert srv.count("POST") == 1  # no fallback: every route would fail alike
    with pytest.raises(ParameterError, match="how_many"):  # re-read: the new name is listed
        client.card(cid, {"rows": 3}, limit=limit, refresh=True)
    df = client.card(cid, {"how_many": 2}, limit=limit)
    assert df["n"].tolist() == [1, 2]


# -- answers the sandbox never gives (a local server) ---------------------------------------


@pytest.mark.parametrize(("limit", "count"), [(None, None), (None, "1"), (5, None), (5, True)])
def test_an_answer_without_its_row_count_is_an_error(
    tmp_path: Path, limit: int | None, count: Any
) -> None:
    """Metabase always sends row_count (/query and the api export's tail): it is checked."""
    doc: dict[str, Any] = {
        "data": {"rows": [[1]], "cols": [{"name": "n", "base_type": "type/Integer"}]},
        "status": "completed",
    }
    if count is not None:
        doc["row_count"] = count

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.command == "GET":
            send(handler, 200, LOCAL_CARD, "application/json")
        else:
            send(handler, 202, json.dumps(doc).encode(), "application/json")

    with (
        local_server(answer) as url,
        local_client(url, tmp_path) as mb,
        pytest.raises(ResponseError, match="has no row count") as info,
    ):
        mb.card(1, limit=limit)
    assert "Card 1: the answer from" in info.value.message


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/json"])
def test_a_sign_in_page_is_named_for_what_it_is(tmp_path: Path, ctype: str) -> None:
    """A 200 HTML page (an SSO sign-in, a proxy) is not "a query that failed mid-stream"."""
    page = (
        b"<!DOCTYPE html>\n<html><head><title>Sign in - Example SSO</title></head>"
        b"<body><form>...</form></body></html>"
    )
    with (
        local_server(lambda handler: send(handler, 200, page, ctype)) as url,
        local_client(url, tmp_path) as mb,
        pytest.raises(ResponseError) as info,
    ):
        mb.card(1)
    message = str(info.value)
    assert "answered 200 with an HTML page (“Sign in - Example SSO”)" in message
    assert "probably a sign-in or proxy page, not Metabase's API" in message
    assert "mid-stream" not in message
    assert info.value.status == 200


def test_a_dripping_answer_stops_at_the_deadline(tmp_path: Path) -> None:
    """The timeout bounds the whole read, not only the gap between two socket reads."""
    hung_up = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.command == "GET":
            send(handler, 200, LOCAL_CARD, "application/json")
            return
        handler.send_response(202)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        try:
            handler.wfile.write(b'{"data":{"rows":[')
            for _ in range(400):  # bounded: it stops by itself if nobody hangs up
                time.sleep(0.05)
                handler.wfile.write(b"[1],")
                handler.wfile.flush()
        except OSError:
            hung_up.set()

    with local_server(answer) as url, local_client(url, tmp_path, timeout=0.5) as mb:
        with pytest.raises(ResponseError) as info:
            mb.card(1)
        assert hung_up.wait(10)  # the client hung up rather than read on
    error = info.value
    assert error.message.startswith("Card 1 did not finish within the timeout of 0.5 s on ")
    assert error.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    assert "Client(timeout=<seconds>)" in str(error)
