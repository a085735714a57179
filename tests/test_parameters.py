"""build_parameters: pure checks of names, widget types and value shapes (no server)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import pytest
from declaration_samples import DECLS, dim, var

from massive_magic import Client
from massive_magic.errors import ParameterError, QueryFailed
from massive_magic.parameters import (
    build_parameters,
    declarations,
    describe_parameters,
    match_parameter,
)
from massive_magic.sandbox import demo


def one(key: str, value: Any, decls: list[dict[str, Any]] = DECLS) -> dict[str, Any]:
    [param] = build_parameters(decls, {key: value})
    return param


def test_copies_id_and_target_and_sends_json_number() -> None:
    assert one("min_orders", 50) == {
        "id": "id-min_orders",
        "type": "number/=",
        "target": ["variable", ["template-tag", "min_orders"]],
        "value": 50,
    }


@pytest.mark.parametrize(
    ("key", "value", "ptype", "expected"),
    [
        # number variable: one JSON number, never a formatted string
        ("min_orders", 7, "number/=", 7),
        ("min_orders", 2.5, "number/=", 2.5),
        ("min_orders", "1234", "number/=", 1234),
        ("min_orders", Decimal("12"), "number/=", 12),
        ("min_orders", [3], "number/=", 3),
        ("amount", (1, None), "number/between", [1, None]),
        ("amount", [None, 9.5], "number/between", [None, 9.5]),
        # text: one string for a raw variable, a list for a field filter
        ("region_text", "North", "text", "North"),
        ("region_text", 12, "text", "12"),
        ("region_text", True, "boolean", True),
        ("region", "North", "string/=", ["North"]),
        ("region", ["North", "South"], "string/=", ["North", "South"]),
        ("cat", [1, 2], "category", [1, 2]),
        ("cat", "x", "category", ["x"]),
        # booleans
        ("active", True, "boolean", True),
        ("active", "false", "boolean", False),
        ("flag", False, "boolean/=", [False]),
        # dates: date/all-options picks the specific type for the value
        ("day", dt.date(2026, 1, 31), "date/single", "2026-01-31"),
        ("day", dt.datetime(2026, 1, 31, 8, 30), "date/single", "2026-01-31T08:30:00"),
        ("day", dt.datetime(2026, 1, 31), "date/single", "2026-01-31"),
        ("day", "2026-01-31", "date/single", "2026-01-31"),
        ("day", (dt.date(2026, 1, 1), dt.date(2026, 1, 31)), "date/range", "2026-01-01~2026-01-31"),
        ("day", ("2026-01-01", None), "date/range", "2026-01-01~"),
        ("day", (None, dt.date(2026, 1, 31)), "date/range", "~2026-01-31"),
        ("day", "2026-01-01~2026-01-31", "date/range", "2026-01-01~2026-01-31"),
        ("day", "past30days", "date/relative", "past30days"),
        ("day", "past3months~", "date/relative", "past3months~"),
        ("day", "next2weeks-from-1weeks", "date/relative", "next2weeks-from-1weeks"),
        ("day", "thismonth", "date/relative", "thismonth"),
        ("day", "today", "date/relative", "today"),
        ("day", "2026-01", "date/month-year", "2026-01"),
        ("day", "Q1-2026", "date/quarter-year", "Q1-2026"),
        ("day", "exclude-days-Sat-Sun", "date/all-options", "exclude-days-Sat-Sun"),
        ("since", dt.date(2026, 2, 1), "date/single", "2026-02-01"),
        ("month", "2026-03", "date/month-year", "2026-03"),
        ("unit", "week", "temporal-unit", "week"),
    ],
)
def test_value_shapes(key: str, value: Any, ptype: str, expected: Any) -> None:
    param = one(key, value)
    assert param["type"] == ptype
    assert param["value"] == expected
    assert type(param["value"]) is type(expected)


@pytest.mark.parametrize("key", ["min_orders", "day", "region", "active", "flag"])
def test_none_and_empty_list_mean_no_filter(key: str) -> None:
    assert one(key, None)["value"] is None
    assert one(key, [])["value"] is None


def test_exact_slug_wins_over_another_display_name() -> None:
    decls = [var("region", "category", "Area"), var("area", "category", "Region")]
    assert one("region", "x", decls)["id"] == "id-region"
    assert one("Region", "x", decls)["id"] == "id-region"  # slug, case-insensitive, first
    assert one("Area", "x", decls)["id"] == "id-area"  # slug "area", case-insensitive


def test_unknown_name_lists_parameters_and_types() -> None:
    with pytest.raises(ParameterError) as info:
        build_parameters(DECLS, {"nope": 1}, owner="Card 484")
    message = str(info.value)
    assert "Card 484 has no parameter 'nope'" in message
    assert "min_orders ('Min orders', number/=)" in message
    assert "day (date/all-options, required)" in message
    assert isinstance(info.value, ValueError)


def test_card_without_parameters() -> None:
    with pytest.raises(ParameterError, match="declares no parameters"):
        build_parameters([], {"x": 1})


def test_same_parameter_twice() -> None:
    with pytest.raises(ParameterError, match="given twice"):
        build_parameters(DECLS, {"day": "today", "Day": "yesterday"})


@pytest.mark.parametrize("values", [[("day", "today")], "day=today", 3])
def test_values_must_be_a_mapping(values: Any) -> None:
    with pytest.raises(ParameterError, match="mapping of name to value"):
        build_parameters(DECLS, values)


def test_empty_values_build_nothing() -> None:
    assert build_parameters(DECLS, {}) == []
    assert build_parameters(DECLS, None) == []


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("min_orders", "1,234", "no thousands separators"),
        ("min_orders", "abc", "a number"),
        ("min_orders", True, "a number"),
        ("min_orders", float("nan"), "finite"),
        ("min_orders", [1, 2], "one value"),
        ("amount", 5, "(min, max) pair"),
        ("region_text", ["a", "b"], "one value"),
        ("region", [None], "text"),
        ("region", 5, "write '5' in quotes"),
        ("region", ["DE", 42], "write '42' in quotes"),
        ("region", dt.date(2024, 1, 1), "text"),
        ("day", "2024-13-45", "real calendar date"),
        ("day", "2024-02-30", "real calendar date"),
        ("day", "2024-02-01~2024-02-31", "real calendar date"),
        ("day", "2024-13", "real calendar date"),
        ("since", "2024-01-01T25:00", "real calendar date"),
        ("active", "yes", "True or False"),
        ("day", "last tuesday", "Metabase's date strings"),
        ("day", 20260131, "a date"),
        ("day", (None, None), "at least one end"),
        ("day", ("2026-01-01", "2026-01-31", "2026-02-01"), "(start, end) pair"),
        ("since", "past30days", "for this widget"),
        ("since", ("2026-01-01", "2026-01-31"), "for this widget"),
        ("month", "2026-03-01", "for this widget"),
        ("unit", "fortnight", "one of"),
    ],
)
def test_bad_values_name_the_parameter(key: str, value: Any, fragment: str) -> None:
    with pytest.raises(ParameterError) as info:
        build_parameters(DECLS, {key: value})
    slug = match_parameter(DECLS, key)["slug"]
    assert f"Parameter {slug!r}" in str(info.value)
    assert fragment in str(info.value)


def test_dashboard_parameters_have_no_target_and_take_lists() -> None:
    decls = [
        {"id": "a1", "slug": "region", "name": "Region", "type": "string/="},
        {"id": "b2", "slug": "period", "name": "Period", "type": "date/all-options"},
        {"id": "c3", "slug": "min", "name": "Minimum", "type": "number/>="},
    ]
    built = build_parameters(
        decls, {"Region": "North", "period": "past7days", "minimum": 3}, owner="Dashboard 3"
    )
    assert built == [
        {"id": "a1", "type": "string/=", "value": ["North"]},
        {"id": "b2", "type": "date/relative", "value": "past7days"},
        {"id": "c3", "type": "number/>=", "value": [3]},
    ]


def test_unknown_widget_type_passes_value_through() -> None:
    decls = [dim("x", "geo/polygon")]
    assert one("x", "abc", decls)["value"] == "abc"
    assert one("x", ("a", "b"), decls)["value"] == ["a", "b"]


# -- declarations or their JSON alike (read in declarations.py, see test_declarations) --------


def test_build_takes_decls_or_json_alike() -> None:
    decls = declarations(DECLS)
    assert build_parameters(decls, {"Min orders": 3, "day": "today"}) == build_parameters(
        DECLS, {"Min orders": 3, "day": "today"}
    )
    assert match_parameter(decls, "min orders") is decls[0]
    assert match_parameter(DECLS, "min orders") is DECLS[0]
    assert describe_parameters(decls) == describe_parameters(DECLS)


# -- over HTTP against the sandbox ----------------------------------------------------------


def filtered(mb: Client, **params: Any) -> pd.DataFrame:
    return mb.card(demo.EARNINGS_FILTERED, params)


def days(df: pd.DataFrame) -> tuple[str, str]:
    return str(df["day"].min())[:10], str(df["day"].max())[:10]


def sent(srv: Any, card: int) -> list[dict[str, Any]]:
    [request] = srv.requests("POST", f"/api/card/{card}/query*")
    assert request.query == ""  # never in the query string
    if request.path.endswith("/query/api"):  # the api export: a form field
        return json.loads(parse_qs(request.body.decode())["parameters"][0])
    return json.loads(request.body)["parameters"]


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ((dt.date(2024, 2, 1), dt.date(2024, 2, 10)), ("2024-02-01", "2024-02-10")),
        (("2024-02-01", "2024-02-10"), ("2024-02-01", "2024-02-10")),
        ("2024-02-01~2024-02-10", ("2024-02-01", "2024-02-10")),
        ((None, "2024-01-03"), ("2024-01-01", "2024-01-03")),
        (("2024-12-30", None), ("2024-12-30", "2024-12-31")),
        (dt.date(2024, 3, 5), ("2024-03-05", "2024-03-05")),
        (dt.datetime(2024, 3, 5), ("2024-03-05", "2024-03-05")),
        ("2024-03-05", ("2024-03-05", "2024-03-05")),
        ("2024-02", ("2024-02-01", "2024-02-29")),
        ("Q2-2024", ("2024-04-01", "2024-06-30")),
    ],
)
def test_date_values(srv: Any, client: Client, value: Any, span: tuple[str, str]) -> None:
    df = filtered(client, date=value)
    assert days(df) == span


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("past7days", ("2024-06-08", "2024-06-14")),
        ("past7days~", ("2024-06-08", "2024-06-15")),
        ("yesterday", ("2024-06-14", "2024-06-14")),
        ("today", ("2024-06-15", "2024-06-15")),
    ],
)
def test_relative_dates_follow_the_server_clock(
    srv: Any, client: Client, value: str, span: tuple[str, str]
) -> None:
    srv.clock.set(dt.datetime(2024, 6, 15, 12, tzinfo=dt.timezone.utc).timestamp())
    df = filtered(client, date=value)
    assert days(df) == span
    assert sent(srv, demo.EARNINGS_FILTERED)[0]["type"] == "date/relative"


def test_relative_date_is_sent_as_is(srv: Any, client: Client) -> None:
    filtered(client, date="thismonth")
    [param] = sent(srv, demo.EARNINGS_FILTERED)
    assert param == {
        "id": param["id"],
        "type": "date/relative",
        "target": ["dimension", ["template-tag", "date"]],
        "value": "thismonth",
    }


def test_multi_value_list_and_single(srv: Any, client: Client) -> None:
    df = filtered(client, date="2024-01", country=["DE", "US"])
    assert set(df["country"]) == {"DE", "US"}
    df = filtered(client, date="2024-01", Country="BR")
    assert set(df["country"]) == {"BR"}


def test_number_and_text(srv: Any, client: Client) -> None:
    df = filtered(client, date="2024-01", platform="Windows", min_earnings=50)
    assert set(df["platform"]) == {"Windows"}
    assert df["earnings_usd"].min() >= 50
    body = {p["target"][1][1]: p for p in sent(srv, demo.EARNINGS_FILTERED)}
    assert body["platform"]["value"] == "Windows" and body["platform"]["type"] == "text"
    assert body["min_earnings"]["value"] == 50 and body["min_earnings"]["type"] == "number/="


def test_display_names_case_insensitive(srv: Any, client: Client) -> None:
    by_slug = client.card(demo.EARNINGS_FILTERED, {"date": "2024-01", "min_earnings": 40.5})
    by_name = client.card(demo.EARNINGS_FILTERED, {"DATE": "2024-01", "Min Earnings": 40.5})
    pd.testing.assert_frame_equal(by_slug, by_name)


def test_boolean_parameter(srv: Any, client: Client) -> None:
    rows = [[1, True], [2, False], [3, True]]

    def run(values: dict[str, Any]) -> list[list[Any]]:
        wanted = values.get("on")
        if wanted is None:
            return rows
        wanted = wanted if isinstance(wanted, list) else [wanted]
        return [r for r in rows if r[1] in wanted]

    cid = srv.add_card(
        "Flags",
        [("n", "type/Integer"), ("on", "type/Boolean")],
        parameters=[{"name": "on", "type": "dimension", "widget_type": "boolean/="}],
        run=run,
    )
    assert client.card(cid, {"on": True})["n"].tolist() == [1, 3]
    assert client.card(cid, {"On": "false"})["n"].tolist() == [2]
    assert client.card(cid, {"on": None})["n"].tolist() == [1, 2, 3]


def test_none_means_no_filter(srv: Any, client: Client) -> None:
    df = filtered(client, date=None)  # the default (January) is not used
    assert days(df) == ("2024-01-01", "2024-12-31")
    assert sent(srv, demo.EARNINGS_FILTERED)[0]["value"] is None
    default = client.card(demo.EARNINGS_FILTERED)
    assert days(default) == ("2024-01-01", "2024-01-31")


def test_unknown_name_sends_no_query(srv: Any, client: Client) -> None:
    with pytest.raises(ParameterError) as info:
        filtered(client, region="EU")
    assert "Card 497 has no parameter 'region'" in str(info.value)
    assert "country (string/=)" in str(info.value)
    assert "min_earnings ('Min earnings', number/=)" in str(info.value)
    assert srv.count("POST") == 0


def test_bad_value_names_the_parameter_and_sends_no_query(srv: Any, client: Client) -> None:
    with pytest.raises(ParameterError, match=r"'min_earnings'.*thousands"):
        filtered(client, min_earnings="1,234")
    with pytest.raises(ParameterError, match="'date'"):
        filtered(client, date="last tuesday")
    assert srv.count("POST") == 0


def test_missing_required_parameter_is_query_failed(srv: Any, client: Client) -> None:
    with pytest.raises(QueryFailed) as info:
        client.card(demo.REQUIRED_PARAM)
    assert info.value.error_type == "missing-required-parameter"
    assert "You'll need to pick a value for 'App'" in str(info.value)
    assert len(client.card(demo.REQUIRED_PARAM, {"app": "PuzzleDash"})) > 0


def test_declarations_fetched_once_per_card(srv: Any, client: Client) -> None:
    start = dt.date(2024, 1, 1)
    for i in range(30):
        day = start + dt.timedelta(days=i)
        df = filtered(client, date=(day, day))
        assert days(df) == (day.isoformat(), day.isoformat())
    assert len(srv.log) == 31
    assert srv.count("GET", f"/api/card/{demo.EARNINGS_FILTERED}") == 1


def test_no_params_no_declarations(srv: Any, client: Client) -> None:
    client.card(demo.ALL_TYPES)
    client.card(demo.ALL_TYPES, {})
    # The one GET is the card's name, looked up alongside the first query (not per call).
    assert srv.count("GET") == 1


def test_params_not_a_mapping_sends_nothing(srv: Any, client: Client) -> None:
    with pytest.raises(ParameterError, match="mapping"):
        client.card(demo.SEQUENCE, [("rows", 3)])  # type: ignore[arg-type]
    assert srv.log == []


def test_declarations_from_the_server_keep_labels(srv: Any, client: Client) -> None:
    cid = srv.add_card(
        "Labelled",
        [("country", "type/Text")],
        parameters=[
            {
                "name": "country",
                "type": "dimension",
                "widget_type": "string/=",
                "values": [["DE", "Germany"], ["GB", "United Kingdom"]],
                "multi": True,
            }
        ],
        rows=[["DE"], ["GB"]],
    )
    card = client.session.request("GET", f"/api/card/{cid}").json()
    (decl,) = declarations(card)
    assert decl.labels == ["Germany", "United Kingdom"]
    assert decl.multi_select and decl.widget == "multi-choice"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"country": 42}, "write '42' in quotes"),
        ({"country": ["DE", 42]}, "write '42' in quotes"),
        ({"date": "2024-13-45"}, "real calendar date"),
        ({"date": ("2024-01-01", "2024-02-30")}, "real calendar date"),
    ],
)
def test_a_value_of_the_wrong_type_sends_no_query(
    srv: Any, client: Client, params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ParameterError, match=fragment):
        client.card(demo.EARNINGS_FILTERED, params)
    assert srv.count("POST") == 0
