"""Client.dashboard over real HTTP: every card, concurrently, one failure not losing the rest."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from massive_magic import Client
from massive_magic.errors import (
    AccessDenied,
    BadCardRef,
    ConfigError,
    DashboardNotFound,
    MassiveWarning,
    ParameterError,
    QueryFailed,
)
from massive_magic.metadata import DashboardResult
from massive_magic.sandbox import demo
from massive_magic.sandbox.catalog import Dashboard, Dashcard, DashParam

FILTERED = "Earnings by country (filtered)"
DAILY = "Daily earnings by app"
BROKEN = "Payout reconciliation"
OVERVIEW_PATH = f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}"


def overview(
    mb: Client, params: Any = None, ref: Any = demo.OVERVIEW_DASHBOARD, **kwargs: Any
) -> DashboardResult:
    with pytest.warns(MassiveWarning, match=rf"1 of 3 cards .*'{BROKEN}': QueryFailed"):
        return mb.dashboard(ref, params, **kwargs)


def test_every_card_keyed_by_name_and_the_failure_by_name(srv: Any, client: Client) -> None:
    result = overview(client)
    assert isinstance(result, dict)
    assert list(result) == [FILTERED, DAILY]  # display order; the text card is skipped
    assert set(result.errors) == {BROKEN}
    error = result.errors[BROKEN]
    assert isinstance(error, QueryFailed) and error.error_type == "invalid-query"
    with pytest.raises(QueryFailed):
        result.raise_errors()
    assert result.name == "Partner overview"
    # the dashboard's default date filter (Q1 2024) applies to the filtered card
    days = result[FILTERED]["day"]
    assert str(days.min())[:10] == "2024-01-01" and str(days.max())[:10] == "2024-03-31"
    # the unfiltered card is larger than the 2,000-row cap and still complete
    assert len(result[DAILY]) == demo.DAILY_EARNINGS_ROWS
    assert result[DAILY].attrs["massive"]["source"] == "api"
    base = f"{OVERVIEW_PATH}/dashcard/{demo.DASHCARD_DAILY}/card/{demo.DAILY_EARNINGS}/query"
    assert srv.count("POST", base) == 0  # one request: the api export of the dashcard
    assert srv.count("POST", base + "/api") == 1
    assert srv.count("POST", f"{OVERVIEW_PATH}/dashcard/*") == 3
    assert srv.count("GET", OVERVIEW_PATH) == 1
    assert srv.count("POST", "/api/card/*") == 0  # always the dashcard path
    meta = result[FILTERED].attrs["massive"]
    assert (meta["dashboard_id"], meta["dashcard_id"], meta["card_id"]) == (
        demo.OVERVIEW_DASHBOARD,
        demo.DASHCARD_FILTERED,
        demo.EARNINGS_FILTERED,
    )
    assert meta["name"] == FILTERED
    assert "2 cards" in repr(result) or FILTERED in repr(result)


def test_the_warning_names_the_callers_line(client: Client) -> None:
    """The failed card's warning points at the line that called dashboard()."""
    with pytest.warns(MassiveWarning, match="1 of 3 cards") as caught:
        client.dashboard(demo.OVERVIEW_DASHBOARD)
    assert [w.filename for w in caught] == [__file__]


def test_filters_by_name_or_slug_reach_the_dashcard_path(srv: Any, client: Client) -> None:
    result = overview(client, {"DATE": ("2024-02-01", "2024-02-29"), "country": ["DE", "US"]})
    df = result[FILTERED]
    assert set(df["country"]) == {"DE", "US"}
    assert str(df["day"].min())[:10] == "2024-02-01" and str(df["day"].max())[:10] == "2024-02-29"
    path = f"{OVERVIEW_PATH}/dashcard/{demo.DASHCARD_FILTERED}/card/{demo.EARNINGS_FILTERED}/query"
    [request] = srv.requests("POST", path + "/api")
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode())
    assert form["format_rows"] == ["false"]
    sent = json.loads(form["parameters"][0])
    assert sent == [
        {"id": demo.DASH_DATE_PARAM, "type": "date/range", "value": "2024-02-01~2024-02-29"},
        {"id": demo.DASH_COUNTRY_PARAM, "type": "string/=", "value": ["DE", "US"]},
    ]
    assert request.query == ""


def test_unknown_filter_sends_no_query(srv: Any, client: Client) -> None:
    with pytest.raises(ParameterError, match=r"Dashboard 12 has no parameter 'region'.*country"):
        client.dashboard(demo.OVERVIEW_DASHBOARD, {"region": "EU"})
    assert srv.count("POST") == 0


@pytest.mark.parametrize(
    "ref",
    [
        demo.OVERVIEW_DASHBOARD,
        str(demo.OVERVIEW_DASHBOARD),
        "{url}/dashboard/12-partner-overview",
        "{url}/dashboard/12?tab=1-overview#x",
    ],
)
def test_references(srv: Any, client: Client, ref: Any) -> None:
    if isinstance(ref, str):
        ref = ref.format(url=srv.url)
    assert list(overview(client, ref=ref)) == [FILTERED, DAILY]


def test_a_card_url_is_not_a_dashboard(srv: Any, client: Client) -> None:
    with pytest.raises(BadCardRef, match=r"Client\.card"):
        client.dashboard(f"{srv.url}/question/484-x")
    assert srv.log == []


def test_dashboard_not_found(srv: Any, client: Client) -> None:
    with pytest.raises(DashboardNotFound, match="Dashboard 77 not found"):
        client.dashboard(77)


def _add_dashboard(
    srv: Any,
    did: int,
    cards: list[int],
    params: list[DashParam] | None = None,
    mappings: dict[str, str] | None = None,
) -> None:
    srv.dashboards[did] = Dashboard(
        did,
        f"Board {did}",
        None,
        params or [],
        [
            Dashcard(1000 + i, cid, row=i // 2, col=(i % 2) * 12, mappings=mappings or {})
            for i, cid in enumerate(cards)
        ],
    )


def test_duplicate_names_and_restricted_card(srv: Any, client: Client) -> None:
    _add_dashboard(srv, 70, [demo.ALL_TYPES, demo.ALL_TYPES, demo.RESTRICTED, demo.ALL_TYPES])
    with pytest.warns(MassiveWarning, match="Internal: partner margins"):
        result = client.dashboard(70)
    assert list(result) == ["All column types", "All column types (2)", "All column types (3)"]
    assert isinstance(result.errors["Internal: partner margins"], AccessDenied)
    assert all(len(df) == 11 for df in result.values())


def test_empty_dashboard(srv: Any, client: Client) -> None:
    _add_dashboard(srv, 71, [])
    result = client.dashboard(71)
    assert result == {} and result.errors == {}


@pytest.mark.slow  # seconds of real waiting: out of the fast loop
def test_cards_run_concurrently_and_bounded(srv: Any, client: Client) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(values: dict[str, Any]) -> list[list[Any]]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return [[1, "x"]]

    ids = [
        srv.add_card(f"Slow {i}", [("n", "type/Integer"), ("s", "type/Text")], run=slow)
        for i in range(8)
    ]
    _add_dashboard(srv, 72, ids)
    srv.reset_log()
    result = client.dashboard(72, max_workers=4)
    assert list(result) == [f"Slow {i}" for i in range(8)]
    assert peak == 4  # four cards ran at once on the server, never more
    assert srv.count("POST", "/api/dashboard/72/*") == 8
    peak = 0
    client.dashboard(72, max_workers=1)
    assert peak == 1


def test_bad_max_workers(client: Client) -> None:
    with pytest.raises(ConfigError, match="max_workers"):
        client.dashboard(demo.OVERVIEW_DASHBOARD, max_workers=0)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so progress lines are drawn into it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_progress_for_a_slow_dashboard(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, progress: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=progress) as mb:
        srv.faults.delay_next(seconds=1.5, path=f"{OVERVIEW_PATH}/dashcard/*")
        result = overview(mb)
    assert list(result) == [FILTERED, DAILY]
    out = terminal.getvalue()
    if progress:
        assert "Partner overview" in out and "3/3" in out and "card" in out
    else:
        assert out == ""
    monkeypatch.undo()
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=progress) as mb:
        srv.faults.delay_next(seconds=1.2, path=f"{OVERVIEW_PATH}/dashcard/*")
        overview(mb)
    assert capsys.readouterr().err == ""  # never into a pipe


def test_expired_session_renewed_once_for_concurrent_cards(srv: Any, client: Client) -> None:
    """The session dies while the cards run: the threads renew it once, together."""

    def expire(values: dict[str, Any]) -> list[list[Any]]:
        srv.expire_sessions()
        return [[0]]

    def slow(i: int) -> Any:
        return lambda values: (time.sleep(0.1), [[i]])[1]

    ids = [srv.add_card("Expire", [("n", "type/Integer")], run=expire)]
    ids += [srv.add_card(f"Small {i}", [("n", "type/Integer")], run=slow(i)) for i in range(1, 8)]
    _add_dashboard(srv, 73, ids)
    srv.reset_log()
    result = client.dashboard(73, max_workers=3)
    assert [df["n"].tolist() for df in result.values()] == [[i] for i in range(8)]
    assert srv.count("POST", "/api/session") == 1
    assert srv.count("POST", "/api/dashboard/73/*") >= 8
