"""Metabase links with filters, both ways; round trips through the sandbox's declarations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest

from massive_magic import Client
from massive_magic.errors import BadCardRef, ParameterError, Step
from massive_magic.links import (
    card_url,
    dashboard_url,
    edited_at,
    frame_links,
    merge_params,
    parse_card_url,
    parse_dashboard_url,
    query_string,
    slugify,
    url_params,
)
from massive_magic.metadata import fetch_dashboard
from massive_magic.parameters import build_parameters
from massive_magic.sandbox import demo

SERVER = "https://mb.example"


def tag(slug: str, ptype: str, kind: str = "dimension", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "slug": slug,
        "name": slug.title(),
        "type": ptype,
        "target": [kind, ["template-tag", slug]],
        **extra,
    }


DECLS = [
    tag("country", "string/="),
    tag("date", "date/all-options"),
    tag("platform", "category", "variable"),
    tag("min_earnings", "number/=", "variable"),
    tag("amount", "number/between"),
    tag("active", "boolean", "variable"),
]


def url_for(values: dict[str, Any], decls: list[dict[str, Any]] = DECLS) -> str:
    built = build_parameters(decls, values)
    return card_url(SERVER, 497, "Earnings by country", built, declarations=decls)


# -- slugs and paths ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Earnings by country (filtered)", "earnings-by-country-filtered"),
        ("Daily earnings by app", "daily-earnings-by-app"),
        ("Internal: partner margins", "internal-partner-margins"),
        ("  Crème brûlée   sales!! ", "creme-brulee-sales"),
        ("Q1/2024 — 100% done", "q1-2024-100-done"),
        ("Ünïcödé", "unicode"),
        ("日本語", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_slugify(name: str | None, slug: str) -> None:
    assert slugify(name) == slug


NAME = "Daily earnings by app"


@pytest.mark.parametrize(
    ("server", "name", "kind", "expected"),
    [
        (SERVER, NAME, "question", SERVER + "/question/484-daily-earnings-by-app"),
        (SERVER + "/", NAME, "question", SERVER + "/question/484-daily-earnings-by-app"),
        ("https://x.org/metabase/", None, "question", "https://x.org/metabase/question/484"),
        (SERVER, "日本語", "question", SERVER + "/question/484"),
        (SERVER, "Users", "model", SERVER + "/model/484-users"),
    ],
)
def test_card_url_without_parameters(
    server: str, name: str | None, kind: str, expected: str
) -> None:
    assert card_url(server, 484, name, kind=kind) == expected
    assert card_url(server, 484, name, [], kind=kind) == expected


def test_card_url_in_metabases_own_format() -> None:
    url = url_for({"country": ["DE", "GB"], "date": (dt.date(2024, 1, 1), dt.date(2024, 1, 31))})
    assert url == (
        "https://mb.example/question/497-earnings-by-country"
        "?country=DE&country=GB&date=2024-01-01~2024-01-31"
    )


@pytest.mark.parametrize(
    ("values", "query"),
    [
        ({"date": ("2024-01-01", None)}, "date=2024-01-01~"),
        ({"date": (None, "2024-01-31")}, "date=~2024-01-31"),
        ({"date": "past30days"}, "date=past30days"),
        ({"date": "past3months~"}, "date=past3months~"),
        ({"date": dt.datetime(2024, 1, 31, 8, 30)}, "date=2024-01-31T08:30:00"),
        ({"date": "Q1-2024"}, "date=Q1-2024"),
        ({"country": "DE"}, "country=DE"),
        ({"country": None}, "country="),  # Metabase's "cleared": no filter, no default
        ({"min_earnings": 50}, "min_earnings=50"),
        ({"min_earnings": 2.5}, "min_earnings=2.5"),
        ({"min_earnings": "7"}, "min_earnings=7"),
        ({"amount": (1, None)}, "amount=1&amount="),
        ({"active": True}, "active=true"),
        ({"platform": "Android"}, "platform=Android"),
        ({"platform": "a & b = c?#"}, "platform=a%20%26%20b%20%3D%20c%3F%23"),
        ({"platform": "Ünï/x+y"}, "platform=%C3%9Cn%C3%AF%2Fx%2By"),
        ({"min_earnings": 1, "country": ["US"]}, "min_earnings=1&country=US"),  # order sent
    ],
)
def test_query_values(values: dict[str, Any], query: str) -> None:
    assert urlsplit(url_for(values)).query == query


def test_slug_comes_from_the_object_then_the_declaration_then_the_template_tag() -> None:
    params: list[dict[str, Any]] = [
        {"id": "a", "slug": "from_object", "type": "category", "value": ["x"]},
        {"id": "id-country", "type": "string/=", "value": ["y"]},
        {"id": "c", "type": "text", "target": ["variable", ["template-tag", "tagged"]], "value": 1},
        {"id": "d9", "type": "category", "value": ["w"]},
    ]
    assert query_string(params, DECLS) == "from_object=x&country=y&tagged=1&d9=w"
    with pytest.raises(ParameterError, match="Cannot name"):
        query_string([{"type": "category", "value": 1}])


def test_dashboard_url() -> None:
    decls = [
        {"id": demo.DASH_DATE_PARAM, "slug": "date", "name": "Date", "type": "date/all-options"},
        {"id": demo.DASH_COUNTRY_PARAM, "slug": "country", "name": "Country", "type": "string/="},
    ]
    built = build_parameters(decls, {"Date": "Q1-2024", "country": ["DE", "GB"]})
    url = dashboard_url(SERVER, 12, "Partner overview", built, declarations=decls)
    assert url == SERVER + "/dashboard/12-partner-overview?date=Q1-2024&country=DE&country=GB"
    # Without declarations the id is the key (Metabase's fallback for a slug-less filter).
    assert dashboard_url(SERVER, 12, None, built[:1]) == (
        f"{SERVER}/dashboard/12?{demo.DASH_DATE_PARAM}=Q1-2024"
    )


def test_frame_links_of_a_card_read() -> None:
    card = {"id": 497, "name": "Earnings by country", "type": "model", "parameters": DECLS}
    card["updated_at"] = "2024-01-01T00:00:00Z"
    built = build_parameters(DECLS, {"country": ["DE", "GB"], "min_earnings": 5})
    assert frame_links(SERVER, 497, card, built) == {
        "card_url": SERVER + "/model/497-earnings-by-country?country=DE&country=GB&min_earnings=5",
        "card_updated_at": "2024-01-01T00:00:00Z",
        "dashboard_url": None,
    }
    # without the card's JSON: the id, and the keys the parameter objects name
    assert frame_links(SERVER, 497, None, built)["card_url"] == (
        SERVER + "/question/497?country=DE&country=GB&min_earnings=5"
    )
    assert frame_links(SERVER, 497, {"name": "X y"}, [])["card_url"] == SERVER + "/question/497-x-y"


def test_frame_links_of_a_dashboard_read() -> None:
    decls = [{"id": "d1", "slug": "date", "name": "Date", "type": "date/all-options"}]
    dash = {"id": 12, "name": "Partner overview", "parameters": decls}
    built = build_parameters(decls, {"Date": "Q1-2024"})
    links = frame_links(SERVER, 484, {"name": "Daily"}, built, dashboard=dash)
    assert links == {
        "card_url": SERVER + "/question/484-daily",  # the filters are the dashboard's
        "card_updated_at": None,
        "dashboard_url": SERVER + "/dashboard/12-partner-overview?date=Q1-2024",
    }


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ({"last-edit-info": {"timestamp": "B"}, "updated_at": "A"}, "B"),
        ({"last-edit-info": None, "updated_at": "A"}, "A"),
        ({"last-edit-info": {"timestamp": None}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_edited_at(card: Any, expected: str | None) -> None:
    assert edited_at(card) == expected


# -- links -> values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "values"),
    [
        (
            "country=DE&country=GB&date=2024-01-01~2024-01-31",
            {"country": ["DE", "GB"], "date": ("2024-01-01", "2024-01-31")},
        ),
        ("date=~2024-01-31", {"date": (None, "2024-01-31")}),
        ("date=2024-01-01~", {"date": ("2024-01-01", None)}),
        (
            "date=2024-01-01T08:30:00~2024-01-02%2010:00",
            {"date": ("2024-01-01T08:30:00", "2024-01-02 10:00")},
        ),
        ("date=past3months~", {"date": "past3months~"}),  # relative, not a range
        ("date=~", {"date": "~"}),
        ("x=a~b", {"x": "a~b"}),
        ("min_earnings=50", {"min_earnings": "50"}),  # text: build_parameters converts
        ("platform=", {"platform": None}),  # cleared: no filter
        ("amount=1&amount=", {"amount": ["1", None]}),
        ("p=a%20%26%20b&q=x+y", {"p": "a & b", "q": "x y"}),
        ("p=%D9%A5", {"p": "\u0665"}),
        ("", {}),
    ],
)
def test_parse_card_url_values(query: str, values: dict[str, Any]) -> None:
    assert parse_card_url(f"{SERVER}/question/497-x?{query}") == (SERVER, 497, values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SERVER + "/question/497-x/notebook?a=1#eyJhIjoxfQ", (SERVER, 497, {"a": "1"})),
        ("HTTPS://MB.example:443/question/497", (SERVER, 497, {})),
        ("https://user:secret@mb.example/question/497", (SERVER, 497, {})),  # no credentials
        ("http://127.0.0.1:3000/model/7-m?a=1", ("http://127.0.0.1:3000", 7, {"a": "1"})),
        ("https://x.org/metabase/question/31-x?a=1", ("https://x.org/metabase", 31, {"a": "1"})),
        ("/question/497-x?country=DE", (None, 497, {"country": "DE"})),
        ("497-earnings", (None, 497, {})),
        (497, (None, 497, {})),
    ],
)
def test_parse_card_url_server_and_id(text: object, expected: tuple[Any, ...]) -> None:
    assert parse_card_url(text) == expected


def test_parse_card_url_refuses_another_server() -> None:
    with pytest.raises(BadCardRef) as info:
        parse_card_url("https://other.example/question/497?country=DE", server=SERVER)
    assert "https://other.example" in info.value.message
    assert SERVER in info.value.message
    assert info.value.next_steps[0].step is Step.CONNECT_SERVER
    assert parse_card_url(SERVER + ":443/question/497", server=SERVER + "/")[1] == 497


def test_parse_card_url_rejects_a_dashboard_and_vice_versa() -> None:
    with pytest.raises(BadCardRef, match="dashboard, not a card"):
        parse_card_url(SERVER + "/dashboard/12?date=Q1-2024")
    with pytest.raises(BadCardRef, match="card, not a dashboard"):
        parse_dashboard_url(SERVER + "/question/497")


def test_parse_dashboard_url_skips_the_tab() -> None:
    assert parse_dashboard_url(SERVER + "/dashboard/12-o?tab=3-main&date=Q1-2024&country=DE") == (
        SERVER,
        12,
        {"date": "Q1-2024", "country": "DE"},
    )


def test_url_params_keeps_key_order_and_skips_empty_keys() -> None:
    assert list(url_params("b=1&a=2&b=3&=x")) == ["b", "a"]


@pytest.mark.parametrize(
    ("url_values", "explicit", "decls", "expected"),
    [
        (
            {"country": "DE", "date": "Q1"},
            {"country": ["US"]},
            None,
            {"date": "Q1", "country": ["US"]},
        ),
        ({"country": "DE"}, {"COUNTRY": None}, None, {"COUNTRY": None}),
        ({"country": "DE"}, {"Country": "US"}, DECLS, {"Country": "US"}),
        ({"country": "DE"}, {"id-country": "US"}, DECLS, {"id-country": "US"}),
        ({"Min_Earnings": "5"}, {"min_earnings": 7}, DECLS, {"min_earnings": 7}),
        ({"country": "DE"}, {"date": "today"}, DECLS, {"country": "DE", "date": "today"}),
        ({"nope": "1"}, {"country": "US"}, DECLS, {"nope": "1", "country": "US"}),
        ({"country": "DE"}, {"Country": "US"}, None, {"Country": "US"}),
        ({"country": "DE"}, None, DECLS, {"country": "DE"}),
        (None, {"country": "DE"}, DECLS, {"country": "DE"}),
    ],
)
def test_merge_params_explicit_wins(
    url_values: Any, explicit: Any, decls: Any, expected: dict[str, Any]
) -> None:
    assert merge_params(url_values, explicit, decls) == expected


# -- round trips against the sandbox -------------------------------------------------

#: demo card -> parameter values to send (each a separate round trip)
ROUND_TRIPS: dict[int, list[dict[str, Any]]] = {
    demo.EARNINGS_FILTERED: [
        {"country": ["DE", "GB"], "date": (dt.date(2024, 1, 1), dt.date(2024, 1, 31))},
        {"country": "US", "date": ("2024-02-01", None), "platform": "Android"},
        {"date": (None, "2024-01-05"), "min_earnings": 2.5},
        {"Date": "2024-03", "Country": ["BR", "MX", "NG"], "min_earnings": 1},
        {"date": "2024-01-10", "platform": None},
        {"date": dt.datetime(2024, 1, 10, 12, 0), "country": None},
        {"date": "Q1-2024", "min_earnings": "3"},
    ],
    demo.SEQUENCE: [{"rows": 3}, {"Rows": "25"}],
    demo.REQUIRED_PARAM: [{"app": "PuzzleDash"}, {"App": "TrailMap Pro"}],
}


@pytest.fixture
def client(sandbox: Any, tmp_path: Path) -> Iterator[Client]:
    with Client(
        sandbox.url, sandbox.username, sandbox.password, cache_dir=tmp_path, progress=False
    ) as mb:
        yield mb


def _round_trip_cases() -> list[tuple[int, dict[str, Any]]]:
    return [(cid, values) for cid, many in ROUND_TRIPS.items() for values in many]


def test_every_demo_card_with_parameters_is_covered() -> None:
    with_params = {cid for cid, card in demo.build_cards().items() if card.tags}
    assert with_params == set(ROUND_TRIPS)


@pytest.mark.parametrize(("cid", "values"), _round_trip_cases())
def test_round_trip_rebuilds_the_same_parameters(
    client: Client, sandbox: Any, cid: int, values: dict[str, Any]
) -> None:
    card = client._card(cid)  # GET /api/card/:id, as Client.card reads the declarations
    decls = card["parameters"]
    sent = build_parameters(decls, values)
    url = card_url(client.url, cid, card["name"], sent, declarations=decls)
    assert url.startswith(f"{sandbox.url}/question/{cid}-")
    server, parsed_id, from_url = parse_card_url(url, server=client.url)
    assert (server, parsed_id) == (sandbox.url, cid)
    assert build_parameters(decls, from_url) == sent
    # The query string is what Metabase's reader expects: one key per slug.
    slugs = {d["slug"] for d in decls}
    assert {key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)} <= slugs


@pytest.mark.parametrize(
    "values",
    [
        {"Date": "Q1-2024", "country": ["DE", "GB"]},
        {"date": ("2024-01-01", None), "country": None},
        {"date": "2024-02-02"},
    ],
)
def test_dashboard_round_trip(client: Client, values: dict[str, Any]) -> None:
    dash = fetch_dashboard(client.session, demo.OVERVIEW_DASHBOARD)
    decls = dash["parameters"]
    sent = build_parameters(decls, values)
    url = dashboard_url(client.url, dash["id"], dash["name"], sent, declarations=decls)
    _, did, from_url = parse_dashboard_url(url, server=client.url)
    assert did == demo.OVERVIEW_DASHBOARD
    assert build_parameters(decls, from_url) == sent


@pytest.mark.parametrize(
    ("cid", "values"),
    [
        (demo.EARNINGS_FILTERED, {"country": ["DE", "GB"], "date": ("2024-01-01", "2024-01-31")}),
        (demo.EARNINGS_FILTERED, {"date": (None, "2024-01-03"), "min_earnings": 2.5}),
        (demo.EARNINGS_FILTERED, {"date": "2024-01-10", "platform": "Windows"}),
        (demo.SEQUENCE, {"rows": 7}),
        (demo.REQUIRED_PARAM, {"app": "PuzzleDash"}),
    ],
)
def test_a_link_reads_the_same_frame_over_http(
    client: Client, sandbox: Any, cid: int, values: dict[str, Any]
) -> None:
    expected = client.card(cid, values)
    card = client._card(cid)
    sent = build_parameters(card["parameters"], values)
    url = card_url(client.url, cid, card["name"], sent, declarations=card["parameters"])
    _, parsed_id, from_url = parse_card_url(url, server=client.url)
    got = client.card(parsed_id, from_url)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs["massive"]["parameters"] == expected.attrs["massive"]["parameters"]
    if cid == demo.EARNINGS_FILTERED:  # an explicit value overrides the link's
        narrowed = client.card(parsed_id, merge_params(from_url, {"Date": "2024-01-02"}))
        assert set(narrowed["day"].dt.date) == {dt.date(2024, 1, 2)}
