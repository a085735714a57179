"""Finding and understanding cards over real HTTP: ``card_info``, ``%massive_info``,
``card_url`` in every frame's provenance, and card URLs with filters read back."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import massive_magic
from massive_magic import Client
from massive_magic.errors import BadCardRef, ParameterError
from massive_magic.magic_text import NOT_LOGGED_IN
from massive_magic.sandbox import demo
from massive_magic.settings import ENV_PASSWORD

STAMP = "2024-04-30T14:02:11.310Z"  # the sandbox cards' last edit


class Page(HTMLParser):
    """Links (href, text) and table classes of an HTML fragment."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.tables: list[str] = []
        self._href: str | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a":
            self._href, self._text = found.get("href"), ""
        elif tag == "table":
            self.tables.append(found.get("class") or "")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text))
            self._href = None


def login(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    ip.run_line_magic("massive_login", f"--url {srv.url} --user {srv.username}")
    srv.reset_log()


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# -- Client.card_info ------------------------------------------------------------------


def test_card_info_has_the_link_edit_facts_and_dtypes(srv: Any, client: Client) -> None:
    info = client.card_info(demo.EARNINGS_FILTERED)
    assert [(r.method, r.path) for r in srv.log] == [
        ("GET", f"/api/card/{demo.EARNINGS_FILTERED}")
    ]  # one request for an uncached card
    assert info["url"] == f"{srv.url}/question/497-earnings-by-country-filtered"
    assert info["updated_at"] == STAMP
    assert info["last_edited_by"] == "Massive Analytics"
    assert info["collection"] == "Partner reporting"
    dtypes = {c["name"]: c["dtype"] for c in info["columns"]}
    assert dtypes["day"] == "datetime64[us]"
    assert dtypes["country"] == "string[pyarrow]"
    assert dtypes["earnings_usd"] == "float64"
    country = next(p for p in info["parameters"] if p["slug"] == "country")
    assert country["values"] == list(demo.COUNTRIES)
    # the link reads the card: id and slug as Metabase writes them
    assert client.card_info(info["url"])["id"] == demo.EARNINGS_FILTERED
    assert srv.count("GET", f"/api/card/{demo.EARNINGS_FILTERED}") == 1


def test_card_info_of_a_missing_card(client: Client) -> None:
    with pytest.raises(massive_magic.CardNotFound):
        client.card_info(999_999)


# -- %massive_info ------------------------------------------------------------------------


def test_massive_info_shows_html_and_text(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    with capture_output() as shown:
        assert ip.run_line_magic("massive_info", str(demo.EARNINGS_FILTERED)) is None
    assert srv.count() == 1
    [output] = shown.outputs
    html, text = output.data["text/html"], output.data["text/plain"]
    page = Page(html)
    url = f"{srv.url}/question/497-earnings-by-country-filtered"
    assert (url, url) in page.links
    assert {"massive-card-facts", "massive-card-parameters", "massive-card-columns"} <= set(
        page.tables
    )
    assert "Earnings by country (filtered) (card 497)" in html
    assert text.startswith("Earnings by country (filtered) (card 497)\n")
    assert "Last edited:       by Massive Analytics on 2024-04-30 14:02 UTC" in text
    assert f"Open in Metabase:  {url}" in text
    assert "country       Country       string/=" in text
    assert "BR, DE, GB, ID, IN, MX, NG, US" in text
    assert "earnings_usd  Earnings (USD)  type/Decimal   float64" in text
    assert "<" not in text


def test_massive_info_takes_a_variable_and_a_url(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    ip.user_ns["ref"] = f"{srv.url}/question/{demo.SEQUENCE}-x?rows=3"
    with capture_output() as shown:
        ip.run_line_magic("massive_info", "{ref}")
    assert "Sequence (card 512)" in shown.outputs[0].data["text/plain"]


def test_massive_info_fails_the_cell(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="Not logged in"):
        ip.run_line_magic("massive_info", "497")
    assert NOT_LOGGED_IN.startswith("Not logged in")
    login(ip, srv, monkeypatch)
    result = ip.run_cell("%massive_info 999999")
    assert type(result.error_in_exec) is UsageError
    assert "999999" in str(result.error_in_exec)
    result = ip.run_cell(f"%massive_info {srv.url}/dashboard/12")
    assert type(result.error_in_exec) is UsageError
    assert isinstance(result.error_in_exec.__cause__, BadCardRef)


# -- card_url in the provenance ---------------------------------------------------------

EARNINGS = f"/question/{demo.EARNINGS_FILTERED}-earnings-by-country-filtered"


@pytest.mark.parametrize(
    ("cid", "values", "path", "query"),
    [
        (demo.ALL_TYPES, None, f"/question/{demo.ALL_TYPES}-all-column-types", []),
        (
            demo.EARNINGS_FILTERED,
            {"country": ["DE", "GB"], "date": (dt.date(2024, 1, 1), dt.date(2024, 1, 31))},
            EARNINGS,
            [("country", "DE"), ("country", "GB"), ("date", "2024-01-01~2024-01-31")],
        ),
        (
            demo.EARNINGS_FILTERED,
            {"date": ("2024-02-01", None), "min_earnings": 2.5},
            EARNINGS,
            [("date", "2024-02-01~"), ("min_earnings", "2.5")],
        ),
        (
            demo.EARNINGS_FILTERED,
            {"date": "2024-01-10", "platform": None, "country": "US"},
            EARNINGS,
            [("date", "2024-01-10"), ("platform", ""), ("country", "US")],
        ),
        (
            demo.EARNINGS_FILTERED,
            {"Date": "past30days"},
            EARNINGS,
            [("date", "past30days")],
        ),
        (demo.SEQUENCE, {"rows": 3}, f"/question/{demo.SEQUENCE}-sequence", [("rows", "3")]),
        (
            demo.REQUIRED_PARAM,
            {"App": "TrailMap Pro"},
            f"/question/{demo.REQUIRED_PARAM}-earnings-for-one-app",
            [("app", "TrailMap Pro")],
        ),
    ],
)
def test_card_url_for_every_parameter_kind(
    srv: Any, client: Client, cid: int, values: Any, path: str, query: list[tuple[str, str]]
) -> None:
    df = client.card(cid, values)
    meta = df.attrs["massive"]
    url = meta["card_url"]
    assert url.startswith(srv.url + path)
    assert urlsplit(url).path == path
    assert query_of(url) == query
    assert meta["card_updated_at"] == STAMP
    assert meta["client_version"] == massive_magic.__version__
    assert meta["dashboard_url"] is None


def test_card_url_is_written_in_metabases_own_query_format(client: Client) -> None:
    df = client.card(
        demo.EARNINGS_FILTERED, {"country": ["DE", "GB"], "date": ("2024-01-01", "2024-01-31")}
    )
    assert df.attrs["massive"]["card_url"].endswith(
        "/question/497-earnings-by-country-filtered"
        "?country=DE&country=GB&date=2024-01-01~2024-01-31"
    )


@pytest.mark.parametrize("params", [None, {"rows": 4}])
def test_card_url_costs_no_request(srv: Any, client: Client, params: Any) -> None:
    """The cold read looks the card up once (alongside, or for the declarations); the
    warm read is one request; both frames carry the link."""
    first = client.card(demo.SEQUENCE, params)
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    assert srv.count() == 2
    srv.reset_log()
    second = client.card(demo.SEQUENCE, params)
    assert [(r.method, r.path) for r in srv.log] == [
        ("POST", f"/api/card/{demo.SEQUENCE}/query/api")
    ]
    assert second.attrs["massive"]["card_url"] == first.attrs["massive"]["card_url"]
    assert "/question/512-sequence" in first.attrs["massive"]["card_url"]
    assert second.attrs["massive"]["card_updated_at"] == STAMP


def test_card_url_from_the_card_list(srv: Any, client: Client) -> None:
    """A card the list showed: its name, link and last edit come from the list, and the
    read is one request (the card's own metadata is not fetched for them)."""
    client.cards()
    srv.reset_log()
    df = client.card(demo.ALL_TYPES)
    assert [(r.method, r.path) for r in srv.log] == [
        ("POST", f"/api/card/{demo.ALL_TYPES}/query/api")
    ]
    meta = df.attrs["massive"]
    assert meta["card_url"] == f"{srv.url}/question/{demo.ALL_TYPES}-all-column-types"
    assert meta["card_updated_at"] == STAMP
    # the list's entry is not taken for the card's declarations
    seq = client.card(demo.SEQUENCE, {"rows": 2})
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    assert seq.attrs["massive"]["card_url"].endswith("/question/512-sequence?rows=2")


def test_card_url_without_the_card_json_still_opens_the_card(srv: Any, client: Client) -> None:
    srv.faults.fail_next(status=403, path=f"/api/card/{demo.ALL_TYPES}", method="GET")
    df = client.card(demo.ALL_TYPES)
    meta = df.attrs["massive"]
    assert meta["name"] is None
    assert meta["card_url"] == f"{srv.url}/question/{demo.ALL_TYPES}"
    assert meta["card_updated_at"] is None


def test_dashboard_frames_link_the_card_and_the_dashboard(srv: Any, client: Client) -> None:
    with pytest.warns(massive_magic.MassiveWarning, match="Payout reconciliation"):
        result = client.dashboard(demo.OVERVIEW_DASHBOARD, {"Date": "Q1-2024", "Country": ["DE"]})
    assert srv.count("GET", "/api/card/*") == 0  # the dashboard embeds its cards
    board = f"{srv.url}/dashboard/12-partner-overview?date=Q1-2024&country=DE"
    for frame in result.values():
        meta = frame.attrs["massive"]
        assert meta["dashboard_url"] == board
        assert urlsplit(meta["card_url"]).query == ""  # the filters are the dashboard's
        assert meta["card_url"].startswith(f"{srv.url}/question/{meta['card_id']}-")
        assert meta["card_updated_at"] == STAMP


# -- links read back ---------------------------------------------------------------------

#: demo card -> parameter values (each its own round trip): lists, ranges, numbers, none
ROUND_TRIPS: list[tuple[int, dict[str, Any]]] = [
    (demo.EARNINGS_FILTERED, {"country": ["DE", "GB"], "date": ("2024-01-01", "2024-01-31")}),
    (demo.EARNINGS_FILTERED, {"country": "US", "date": ("2024-02-01", None)}),
    (demo.EARNINGS_FILTERED, {"date": (None, "2024-01-05"), "min_earnings": 2.5}),
    (demo.EARNINGS_FILTERED, {"date": "2024-01-10", "platform": None, "country": None}),
    (demo.EARNINGS_FILTERED, {"Date": "2024-03", "Country": ["BR", "MX"], "min_earnings": 1}),
    (demo.EARNINGS_FILTERED, {"date": dt.datetime(2024, 1, 10, 12, 0), "platform": "Android"}),
    (demo.EARNINGS_FILTERED, {}),
    (demo.SEQUENCE, {"rows": 3}),
    (demo.SEQUENCE, {"Rows": "25"}),
    (demo.REQUIRED_PARAM, {"app": "PuzzleDash"}),
    (demo.REQUIRED_PARAM, {"App": "TrailMap Pro"}),
]


def test_every_demo_card_with_parameters_has_a_round_trip() -> None:
    with_params = {cid for cid, card in demo.build_cards().items() if card.tags}
    assert with_params == {cid for cid, _ in ROUND_TRIPS}


@pytest.mark.parametrize(("cid", "values"), ROUND_TRIPS)
def test_card_url_reads_the_same_frame(client: Client, cid: int, values: dict[str, Any]) -> None:
    expected = client.card(cid, values)
    url = expected.attrs["massive"]["card_url"]
    got = client.card(url)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs["massive"]["parameters"] == expected.attrs["massive"]["parameters"]
    assert got.attrs["massive"]["card_url"] == url


def test_explicit_parameters_override_the_urls(srv: Any, client: Client) -> None:
    url = f"{srv.url}{EARNINGS}?country=DE&country=GB&date=2024-01-01~2024-01-31"
    df = client.card(url, {"Date": "2024-01-02", "country": None})
    sent = {p["target"][1][1]: p["value"] for p in df.attrs["massive"]["parameters"]}
    assert sent == {"date": "2024-01-02", "country": None}
    assert set(df["day"].dt.date) == {dt.date(2024, 1, 2)}
    assert query_of(df.attrs["massive"]["card_url"]) == [("date", "2024-01-02"), ("country", "")]


def test_an_unknown_filter_in_a_url_is_a_parameter_error(srv: Any, client: Client) -> None:
    with pytest.raises(ParameterError, match="no parameter 'nope'"):
        client.card(f"{srv.url}{EARNINGS}?country=DE&nope=1")
    assert srv.count("POST") == 0
    with pytest.raises(ParameterError, match="no parameter 'foo'"):
        client.card(f"{srv.url}/question/{demo.ALL_TYPES}-all-column-types?foo=1")


def test_a_url_with_filters_in_the_magic(
    ip: InteractiveShell, srv: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = client.card(demo.EARNINGS_FILTERED, {"country": ["DE"], "date": "2024-01-03"})
    login(ip, srv, monkeypatch)
    url = expected.attrs["massive"]["card_url"]
    got = ip.run_line_magic("massive_card", f"{url} -q")
    pd.testing.assert_frame_equal(got, expected)
    # the cell body wins over the URL
    result = ip.run_cell(f"%%massive_card {url} -o narrow\ncountry = GB\n")
    assert result.success, result.error_in_exec
    assert set(ip.user_ns["narrow"]["country"]) == {"GB"}


def test_dashboard_url_with_filters(srv: Any, client: Client) -> None:
    with pytest.warns(massive_magic.MassiveWarning):
        explicit = client.dashboard(demo.OVERVIEW_DASHBOARD, {"date": "Q1-2024", "country": ["DE"]})
    url = f"{srv.url}/dashboard/12-partner-overview?tab=1&date=Q1-2024&country=DE"
    with pytest.warns(massive_magic.MassiveWarning):
        from_url = client.dashboard(url)
    assert list(from_url) == list(explicit)
    for name, frame in from_url.items():
        pd.testing.assert_frame_equal(frame, explicit[name])
    with pytest.warns(massive_magic.MassiveWarning):
        narrowed = client.dashboard(url, {"Country": ["GB"]})
    assert set(next(iter(narrowed.values()))["country"]) <= {"GB"}
    with pytest.raises(ParameterError):
        client.dashboard(f"{srv.url}/dashboard/12?nope=1")


# -- the -o summary links the card -------------------------------------------------------


def test_summary_links_the_card_name(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    with capture_output() as shown:
        result = ip.run_cell(f"%%massive_card {demo.SEQUENCE} -o seq\nrows = 10\n")
    assert result.success, result.error_in_exec
    [output] = shown.outputs
    text = output.data["text/plain"]
    assert text.startswith("seq: 10 rows x 2 columns from 'Sequence' in ")
    url = ip.user_ns["seq"].attrs["massive"]["card_url"]
    assert url == f"{srv.url}/question/{demo.SEQUENCE}-sequence?rows=10"
    assert Page(output.data["text/html"]).links == [(url, "'Sequence'")]
