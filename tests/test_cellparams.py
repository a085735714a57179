"""The %%massive_card cell body: pure parsing and writing, no shell, no server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from massive_magic.cellparams import (
    NULL_WORDS,
    expand_vars,
    format_cell,
    format_value,
    parse_cell,
    strip_comment,
)
from massive_magic.errors import ParameterError
from massive_magic.parameters import ParameterDecl, build_parameter

SINCE = dt.date(2024, 1, 1)
NS: dict[str, Any] = {
    "since": SINCE,
    "regions": ["EU", "US"],
    "bounds": (1, 5),
    "n": 7,
    "name": "Ana",
}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('start = "2024-01-01"', {"start": "2024-01-01"}),
        ("start = 2024-01-01", {"start": "2024-01-01"}),
        ("rows = 25", {"rows": 25}),
        ("ratio = 0.5", {"ratio": 0.5}),
        ("flag = true", {"flag": True}),
        ("nothing = null", {"nothing": None}),
        ("nothing = None", {"nothing": None}),
        ("nothing = none", {"nothing": None}),
        ("nothing = NULL", {"nothing": None}),
        ('text = "None"', {"text": "None"}),
        ("text = None at all", {"text": "None at all"}),
        ('ids = [1, 2, "x"]', {"ids": [1, 2, "x"]}),
        ('obj = {"a": 1}', {"obj": {"a": 1}}),
        ("region = EU West", {"region": "EU West"}),
        ("Start date = 2024-02-01", {"Start date": "2024-02-01"}),
        ("since = {since}", {"since": SINCE}),
        ("since = { since }", {"since": SINCE}),
        ("regions = {regions}", {"regions": ["EU", "US"]}),
        ("bounds = {bounds}", {"bounds": (1, 5)}),
        ("n = {n}", {"n": 7}),
        ("label = Week of {since}", {"label": "Week of 2024-01-01"}),
        ('label = "{name} / {n}"', {"label": "Ana / 7"}),
        ('quoted = "{n}"', {"quoted": "7"}),
        ("braces = {{literal}}", {"braces": "{literal}"}),
        ('color = "#ff0000"', {"color": "#ff0000"}),
        ("lang = C# # the language", {"lang": "C#"}),
        ('tag = "a # b"  # comment', {"tag": "a # b"}),
        ("expr = a=b", {"expr": "a=b"}),
        ("  spaced   =   padded value   ", {"spaced": "padded value"}),
    ],
)
def test_one_line(line: str, expected: dict[str, Any]) -> None:
    assert parse_cell(line, NS) == expected


def test_whole_body_keeps_order_and_skips_comments_and_blanks() -> None:
    body = """
    # which period
    start = 2024-01-01   # inclusive

    end = {since}
    rows = 3
    """
    params = parse_cell(body, NS)
    assert list(params) == ["start", "end", "rows"]
    assert params == {"start": "2024-01-01", "end": SINCE, "rows": 3}
    assert params["end"] is SINCE


def test_empty_body_is_no_parameters() -> None:
    assert parse_cell("", NS) == {}
    assert parse_cell("\n  # only a comment\n\n", NS) == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("just some words", "Line 1 of the cell: 'just some words' is not 'name = value'"),
        ("a = 1\n= 2", "Line 2 of the cell: '= 2' is not 'name = value'"),
        ("a =", "Line 1 (a): the value is empty"),
        ("a = {missing}", "Line 1 (a): {missing} is not defined in the notebook"),
        ("a = x {missing} y", "{missing} is not defined"),
        ('a = "unclosed', "starts with a quote but is not a valid JSON string"),
        ('country = ["DE", "GB"', "starts like a JSON list but is not valid JSON"),
        ("country = [DE, GB]", "starts like a JSON list but is not valid JSON"),
        ("ids = [{n}, 2]", "put a whole value from the notebook with {var}"),
        ('obj = {"a": 1', "starts like a JSON object but is not valid JSON"),
        ("obj = {1, 2}", "starts like a JSON object"),
        ("a = 1\nA = 2", "Line 2: parameter 'A' is already set on line 1"),
    ],
)
def test_bad_bodies_name_the_line(body: str, fragment: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_cell(body, NS)
    assert fragment in str(info.value)


def test_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_cell("nope", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value # c", "value"),
        ("# all comment", ""),
        ('"x # y"', '"x # y"'),
        ('"esc \\" # still string" # gone', '"esc \\" # still string"'),
        ("a#b", "a#b"),
    ],
)
def test_strip_comment(text: str, expected: str) -> None:
    assert strip_comment(text) == expected


def test_expand_vars_whole_and_inline() -> None:
    assert expand_vars("{n}", NS) == 7
    assert expand_vars("{n}", NS, whole=False) == "7"
    assert expand_vars("n={n}!", NS) == "n=7!"


def test_no_ipython_import() -> None:
    import subprocess
    import sys

    code = "import sys, massive_magic.cellparams; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_null_words_are_the_documented_ones() -> None:
    assert {"None", "none", "null", "NULL"} == NULL_WORDS


def test_braces_that_start_a_template_are_not_json() -> None:
    assert parse_cell("a = {n} rows", NS) == {"a": "7 rows"}
    assert parse_cell("a = {{x}} literal", NS) == {"a": "{x} literal"}


# -- the writer: format_cell / format_value ----------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"country": ["US", "DE"], "date": "2026-01-01~2026-01-31"},
        {"rows": 25, "ratio": 0.25, "flag": True, "off": False, "nothing": None},
        {"label": 'say "hi" \\ {not a var} # not a comment'},
        {"city": "Zürich", "tags": ["{x}", "a,b"], "n": [1, 2.5]},
        {"Start date": "None", "other": "null"},
    ],
)
def test_generated_cell_body_parses_back_to_the_same_parameters(params: dict[str, Any]) -> None:
    code = format_cell(484, params)
    first, _, body = code.partition("\n")
    assert first == "%%massive_card 484 -o df"
    assert code.endswith("\n")
    assert parse_cell(body, {}) == params


def test_format_cell_matches_the_documented_example() -> None:
    code = format_cell(484, {"country": ["US", "DE"], "date": "2026-01-01~2026-01-31"})
    assert code == (
        '%%massive_card 484 -o df\ncountry = ["US", "DE"]\ndate = "2026-01-01~2026-01-31"\n'
    )
    assert format_cell(7, {}, variable="daily") == "%%massive_card 7 -o daily\n"


@pytest.mark.parametrize("name", ["", " x", "x ", "a=b", "# x", "two\nlines"])
def test_a_name_the_cell_cannot_hold_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be written as a parameter name"):
        format_cell(1, {name: 1})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), b"bytes"])
def test_a_value_the_cell_cannot_hold_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="cannot be"):
        format_value(value)


def _same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True in Python)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)


def _round_trip(value: Any) -> Any:
    body = format_cell(1, {"value": value}).partition("\n")[2]
    return parse_cell(body, {})["value"]


_HARD_TEXT = [
    "",
    '"',
    '"quoted"',
    "#",
    " # not a comment",
    "a # b",
    "=",
    "a = b",
    "{",
    "}",
    "{x}",
    "{{x}}",
    " leading",
    "trailing ",
    "two\nlines",
    "cr\rlf",
    "tab\there",
    "back\\slash",
    "\u2028line separator",
    "next line\x85",
    "\x0bvertical tab",
    "Zürich 東京 🙂",
    "None",
    "null",
    "true",
    "42",
    "[1, 2",
    "2024-13-45",
]
_SCALARS = (
    st.text()
    | st.sampled_from(_HARD_TEXT)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
_JSON_VALUES = _SCALARS | st.lists(_SCALARS, max_size=4)


@given(_JSON_VALUES)
@example("")
@example(-0.0)
@example(10**30)
@example(1e300)
@example(["{x}", "#", None, 1.5])
def test_json_kinds_round_trip_exactly(value: Any) -> None:
    assert _same(_round_trip(value), value)


@pytest.mark.parametrize("text", _HARD_TEXT)
def test_hard_text_round_trips(text: str) -> None:
    assert _same(_round_trip(text), text)
    assert _same(_round_trip([text, text]), [text, text])


_DATE_DECLS = [
    ParameterDecl("a", "day", type="date/all-options", target=["dimension", ["template-tag", "d"]]),
    ParameterDecl("r", "span", type="date/range", target=["dimension", ["template-tag", "r"]]),
    ParameterDecl("s", "since", type="date/single", target=["variable", ["template-tag", "s"]]),
]
_DATES = st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31))
_DATETIMES = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 12, 31)) | st.datetimes(
    dt.datetime(1900, 1, 2), dt.datetime(2200, 12, 30), timezones=st.timezones()
)
_ENDS = _DATES | _DATETIMES | st.none()
_DATE_VALUES = (
    _DATES | _DATETIMES | st.tuples(_ENDS, _ENDS).filter(lambda pair: pair != (None, None))
)


def _plain(value: Any) -> Any:
    """The form the cell holds a date or pair in: ISO text and a list (no date literal)."""
    if isinstance(value, dt.datetime):
        text = value.replace(tzinfo=None).isoformat(timespec="seconds")
        return text[:-9] if text.endswith("T00:00:00") else text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@given(_DATE_VALUES)
@example(dt.datetime(2024, 1, 31, 8, 30, 15, 123456))
@example(dt.datetime(2024, 1, 31))
@example((dt.date(2024, 1, 1), None))
@example((None, dt.datetime(2024, 1, 31, 23, 59)))
def test_dates_and_pairs_round_trip_to_the_same_metabase_value(value: Any) -> None:
    """The format has no date or tuple literal; what it reads back sends the same value."""
    parsed = _round_trip(value)
    assert _same(parsed, _plain(value))
    for decl in _DATE_DECLS:
        try:
            expected = build_parameter(decl, value)
        except ParameterError:
            with pytest.raises(ParameterError):
                build_parameter(decl, parsed)
        else:
            assert build_parameter(decl, parsed) == expected


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("12"), "12"),
        (Decimal("1.5"), "1.5"),
        ((1, None), "[1, null]"),
        (frozenset({"x"}), '["x"]'),
        ({"a": [1]}, '{"a": [1]}'),
        ("{x}", '"{{x}}"'),
    ],
)
def test_other_values_are_written_as_json(value: Any, written: str) -> None:
    assert format_value(value) == written
