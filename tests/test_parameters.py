"""build_parameters: pure checks of names, widget types and value shapes (no server)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from massive_magic.errors import ParameterError
from massive_magic.parameters import build_parameters, describe_parameters, match_parameter


def var(slug: str, ptype: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "slug": slug,
        "name": name or slug.replace("_", " ").title(),
        "type": ptype,
        "target": ["variable", ["template-tag", slug]],
        **extra,
    }


def dim(slug: str, ptype: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "slug": slug,
        "name": name or slug.replace("_", " ").title(),
        "type": ptype,
        "target": ["dimension", ["template-tag", slug]],
        **extra,
    }


DECLS = [
    var("min_orders", "number/=", "Min orders", default="0"),
    dim("day", "date/all-options", "Day", required=True),
    var("region_text", "category", "Region text"),
    dim("region", "string/=", "Region"),
    var("since", "date/single", "Since"),
    dim("amount", "number/between", "Amount"),
    var("active", "boolean", "Active"),
    dim("flag", "boolean/=", "Flag"),
    dim("cat", "category", "Category"),
    dim("month", "date/month-year", "Month"),
    dim("unit", "temporal-unit", "Unit"),
]


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
        ("region_text", "North", "category", "North"),
        ("region_text", 12, "category", "12"),
        ("region_text", True, "category", True),
        ("region", "North", "string/=", ["North"]),
        ("region", ["North", "South"], "string/=", ["North", "South"]),
        ("region", 5, "string/=", ["5"]),
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


@pytest.mark.parametrize(
    ("key", "slug"),
    [
        ("min_orders", "min_orders"),
        ("MIN_ORDERS", "min_orders"),
        ("Min orders", "min_orders"),
        ("min ORDERS", "min_orders"),
        ("  Day ", "day"),
        ("id-region", "region"),
    ],
)
def test_matches_slug_display_name_and_id(key: str, slug: str) -> None:
    assert match_parameter(DECLS, key)["slug"] == slug


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
        ("region", [None], "a string"),
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


def test_describe_parameters() -> None:
    assert describe_parameters(DECLS[:2]) == (
        "min_orders ('Min orders', number/=), day (date/all-options, required)"
    )
