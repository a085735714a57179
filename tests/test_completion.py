"""Completion logic, pure: card references, parameter names and values, cursor context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from massive_magic.cellparams import parse_cell
from massive_magic.completion import (
    CardIndex,
    CellContext,
    cell_context,
    complete_card_refs,
    complete_dashboards,
    complete_parameter_names,
    complete_parameter_values,
    fit_to_token,
    static_values,
)
from massive_magic.sandbox import demo

CARDS = [card.describe() for card in demo.build_cards().values()]
FILTERED = demo.build_cards()[demo.EARNINGS_FILTERED].describe()["parameters"]
DECLS = {d["slug"]: d for d in FILTERED}


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("48", ["484-daily-earnings-by-app"]),
        ("484", ["484-daily-earnings-by-app"]),
        ("484-da", ["484-daily-earnings-by-app"]),
        ("484-DAILY-e", ["484-daily-earnings-by-app"]),
        ("484-x", []),
        ("50", [f"{i}-{s}" for i, s in [(501, "all-column-types"), (503, "payout-reconciliation"),
                                         (505, "internal-partner-margins"),
                                         (507, "device-sessions-1m-rows")]]),
        ("earn", ["484-daily-earnings-by-app", "497-earnings-by-country-filtered",
                  "515-earnings-for-one-app"]),
        ("EARN", ["484-daily-earnings-by-app", "497-earnings-by-country-filtered",
                  "515-earnings-for-one-app"]),
        ("earnings-by", ["484-daily-earnings-by-app", "497-earnings-by-country-filtered"]),
        ("by-c", ["497-earnings-by-country-filtered"]),
        ("coun", ["497-earnings-by-country-filtered"]),
        ("Internal: p", ["505-internal-partner-margins"]),
        ("1m", ["507-device-sessions-1m-rows"]),
        ("nothing", []),
        ("-", []),
    ],
)  # fmt: skip
def test_card_refs(prefix: str, expected: list[str]) -> None:
    assert complete_card_refs(CARDS, prefix) == expected


def test_empty_prefix_lists_every_card_in_list_order() -> None:
    assert complete_card_refs(CARDS, "") == [
        "484-daily-earnings-by-app",
        "497-earnings-by-country-filtered",
        "501-all-column-types",
        "503-payout-reconciliation",
        "505-internal-partner-margins",
        "507-device-sessions-1m-rows",
        "512-sequence",
        "515-earnings-for-one-app",
    ]


def test_id_matches_come_first_then_name_matches_each_stable() -> None:
    cards = [
        {"id": 900, "name": "Report 12 weekly"},
        {"id": 12, "name": "Exact twelve"},
        {"id": 125, "name": "Other"},
        {"id": 7, "name": "12 months"},
        {"id": 120, "name": "Zeta"},
    ]
    # the exact id first, then other id prefixes in list order, then name words
    assert complete_card_refs(cards, "12") == [
        "12-exact-twelve",
        "125-other",
        "120-zeta",
        "900-report-12-weekly",
        "7-12-months",
    ]


def test_index_keeps_what_to_show_beside_a_ref() -> None:
    index = CardIndex(CARDS)
    [match] = index.matches("501")
    assert (match.ref, match.id, match.name, match.collection) == (
        "501-all-column-types",
        501,
        "All column types",
        "QA",
    )
    assert index.complete("", limit=2) == [
        "484-daily-earnings-by-app",
        "497-earnings-by-country-filtered",
    ]
    assert len(index) == len(CARDS)


def test_ids_of_any_integral_type_and_odd_items() -> None:
    np = pytest.importorskip("numpy")
    cards: list[dict[str, Any]] = [
        {"id": np.int64(7), "name": "Seven", "collection": "Text collection"},
        {"id": True, "name": "A bool is not an id"},
        {"id": "8", "name": "Text is not an id"},
        {"id": None, "name": "No id"},
        {"id": 0, "name": "Zero"},
        {"id": 9, "name": None},
        {"id": 10, "name": "日本語"},
    ]
    index = CardIndex(cards)
    assert index.complete("") == ["7-seven", "9", "10"]
    assert index.matches("7")[0].collection == "Text collection"


def test_five_thousand_cards() -> None:
    cards = [
        {"id": i, "name": f"Card {i} {'earnings' if i % 7 == 0 else 'devices'} report"}
        for i in range(1, 5001)
    ]
    index = CardIndex(cards)
    assert index.complete("4999") == ["4999-card-4999-devices-report"]
    earn = index.complete("earn")
    assert len(earn) == 5000 // 7
    assert earn[:2] == ["7-card-7-earnings-report", "14-card-14-earnings-report"]
    ids = index.complete("12")
    assert ids[0] == "12-card-12-devices-report"  # exact id first
    assert len(ids) == len({i for i in range(1, 5001) if str(i).startswith("12")}) + sum(
        1 for i in range(1, 5001) if not str(i).startswith("12") and "12" in str(i).split()
    )
    assert index.complete("earn", limit=3) == earn[:3]


def test_dashboards() -> None:
    dashboards = [{"id": 12, "name": "Partner overview"}, {"id": 3, "name": "Ops"}]
    assert complete_dashboards(dashboards, "over") == ["12-partner-overview"]
    assert complete_dashboards(dashboards, "") == ["12-partner-overview", "3-ops"]


# -- parameter names and values ------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "given", "expected"),
    [
        ("", (), ["date = ", "country = ", "platform = ", "min_earnings = "]),
        ("c", (), ["country = "]),
        ("C", (), ["country = "]),
        ("min", (), ["min_earnings = "]),
        ("earn", (), ["min_earnings = "]),  # a word of the display name "Min earnings"
        ("Min e", (), ["min_earnings = "]),
        ("", ("Country", "DATE"), ["platform = ", "min_earnings = "]),
        ("x", (), []),
    ],
)
def test_parameter_names(prefix: str, given: tuple[str, ...], expected: list[str]) -> None:
    assert complete_parameter_names(FILTERED, prefix, given) == expected


def test_parameter_name_completions_parse_as_cell_lines() -> None:
    for completion in complete_parameter_names(FILTERED, ""):
        assert list(parse_cell(completion + "1")) == [completion.split(" =")[0]]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"values": ["DE", "GB"]}, [("DE", None), ("GB", None)]),
        ({"values": [["DE", "Germany"], ["GB", "UK"]]}, [("DE", "Germany"), ("GB", "UK")]),
        ({"values": [["DE"], [], [3, None]]}, [("DE", None), (3, None)]),
        ({}, []),
        (None, []),
        ({"values": "DE"}, []),
    ],
)  # fmt: skip
def test_static_values(config: Any, expected: list[Any]) -> None:
    assert static_values({"values_source_config": config}) == expected


def test_values_from_the_static_list() -> None:
    country = DECLS["country"]
    assert complete_parameter_values(country, "") == list(demo.COUNTRIES)
    assert complete_parameter_values(country, "g") == ["GB"]
    assert complete_parameter_values(country, '"g') == ["GB"]
    assert complete_parameter_values(country, "zz") == []


def test_values_match_a_word_of_the_label() -> None:
    decl = {
        "type": "string/=",
        "values_source_config": {"values": [["DE", "Germany"], ["GB", "United Kingdom"]]},
    }
    assert complete_parameter_values(decl, "king") == ["GB"]
    assert complete_parameter_values(decl, "d") == ["DE"]


def test_values_of_a_date_parameter_start_with_its_default() -> None:
    date = DECLS["date"]
    values = complete_parameter_values(date, "")
    assert values[0] == "2024-01-01~2024-01-31"
    assert "past30days" in values
    assert complete_parameter_values(date, "past") == ["past7days", "past30days"]
    assert complete_parameter_values({"type": "date/month-year"}, "") == []


def test_values_of_booleans_and_temporal_units() -> None:
    assert complete_parameter_values({"type": "boolean"}, "") == ["true", "false"]
    assert complete_parameter_values({"type": "temporal-unit"}, "w") == ["week"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("DE", "DE"),
        ("Lumen Weather", "Lumen Weather"),
        ("123", '"123"'),  # bare, a cell would read the number 123
        ("true", '"true"'),
        ("null", '"null"'),
        ("[1]", '"[1]"'),
        (" padded", '" padded"'),
        ("#1", '"#1"'),
        ("a {b}", "a {{b}}"),
        ("{b}", "{{b}}"),
        ('{"a": 1}', '{{"a": 1}}'),
        ("two\nlines", '"two\\nlines"'),
        ("C #", '"C #"'),
        ("", '""'),
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
    ],
)
def test_values_are_written_so_the_cell_reads_them_back(value: Any, text: str) -> None:
    decl = {"type": "category", "values_source_config": {"values": [value]}}
    assert complete_parameter_values(decl, "") == [text]
    assert parse_cell(f"x = {text}") == {"x": value}


def test_values_inside_a_json_list_are_json() -> None:
    country = DECLS["country"]
    assert complete_parameter_values(country, '"G', in_list=True) == ['"GB"']
    assert complete_parameter_values(country, "", in_list=True)[:2] == ['"BR"', '"DE"']
    decl = {"type": "category", "values_source_config": {"values": ["a {b}", 3, True]}}
    items = complete_parameter_values(decl, "", in_list=True)
    assert items == ['"a {b}"', "3", "true"]
    assert parse_cell(f"x = [{', '.join(items)}]") == {"x": ["a {b}", 3, True]}
    assert fit_to_token('"GB"', '"G', "G") == 'GB"'


def test_values_without_a_list() -> None:
    assert complete_parameter_values(DECLS["min_earnings"], "") == []
    assert complete_parameter_values({"type": "category", "default": "Android"}, "an") == [
        "Android"
    ]


# -- cursor context ------------------------------------------------------------------

CELL = "%%massive_card -o df 497\ncountry = DE\n# a comment\nda"
H = "%%massive_card 497\n"


@pytest.mark.parametrize(
    ("cell", "line", "cursor_line", "expected"),
    [
        (CELL, "da", 3, CellContext("name", "da", None, "497", ("country",))),
        (CELL, "", 3, CellContext("name", "", None, "497", ("country",))),
        (H + "country = D", "country = D", 1, CellContext("value", "D", "country", "497")),
        (H + "country = D", "country = D", None, CellContext("value", "D", "country", "497")),
        (H + "Min orders =", "Min orders =", 1, CellContext("value", "", "Min orders", "497")),
        (H + "app = Lumen W", "app = Lumen W", 1, CellContext("value", "Lumen W", "app", "497")),
        (H + 'c = [1, "G', 'c = [1, "G', 1, CellContext("value", '"G', "c", "497", in_list=True)),
        (H + "c = [", "c = [", 1, CellContext("value", "", "c", "497", in_list=True)),
        ("%%massive_card {ref}\nco", "co", 1, CellContext("name", "co", None, None)),
        ("%%massive_card --refresh https://mb/question/497-x\nco", "co", 1,
         CellContext("name", "co", None, "https://mb/question/497-x")),
        (H + "day = {d", "day = {d", 1, CellContext("none")),
        (H + "# co", "# co", 1, CellContext("none")),
        (H + "x = 1 # co", "x = 1 # co", 1, CellContext("none")),
        ("%%massive_dashboard 12\nco", "co", 1, CellContext("none")),
        ("import pandas\nco", "co", 1, CellContext("none")),
        ("", "co", 0, CellContext("none")),
    ],
)  # fmt: skip
def test_cell_body_context(
    cell: str, line: str, cursor_line: int | None, expected: CellContext
) -> None:
    assert cell_context(cell, line, cursor_line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%massive_card ", CellContext("card", "")),
        ("%massive_card 48", CellContext("card", "48")),
        ("%%massive_card earn", CellContext("card", "earn")),
        ("  %massive_card -q --refresh 48", CellContext("card", "48")),
        ("%massive_card -o df 48", CellContext("card", "48")),
        ("%massive_card --limit 10 ", CellContext("card", "")),
        ("%massive_info 5", CellContext("card", "5")),
        ("%massive_dashboard ov", CellContext("dashboard", "ov")),
        ("%massive_card -o ", CellContext("none")),  # the value of -o
        ("%massive_card --limit 1", CellContext("none")),
        ("%massive_card --ref", CellContext("none")),  # an option
        ("%massive_card 484 -o", CellContext("none")),
        ("%massive_card 484 ", CellContext("none")),  # the reference is written
        ("%massive_cards ", CellContext("none")),
        ("%massive_card", CellContext("none")),  # no space yet: IPython completes the magic
        ("%timeit 48", CellContext("none")),
    ],
)
def test_magic_line_context(line: str, expected: CellContext) -> None:
    assert cell_context(line, line, 0) == expected


@pytest.mark.parametrize(
    ("candidate", "typed", "token", "insert"),
    [
        ("484-daily-earnings-by-app", "48", "48", "484-daily-earnings-by-app"),
        ("Lumen Weather", "Lumen W", "W", "Weather"),
        ("Lumen Weather", "lumen w", "w", "Weather"),
        ("GB", "", "", "GB"),
        ("United Kingdom", "Uni", "Uni", "United Kingdom"),
        ("PuzzleDash", "Lumen W", "W", None),
        ("x", "ab", "zz", None),
    ],
)
def test_fit_to_token(candidate: str, typed: str, token: str, insert: str | None) -> None:
    assert fit_to_token(candidate, typed, token) == insert


def test_value_completions_are_json_or_bare_text() -> None:
    for text in complete_parameter_values(DECLS["country"], ""):
        assert json.loads(json.dumps(text)) == text
