"""The %%massive_card cell body: pure parsing, no shell, no server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from massive_magic.cellparams import expand_vars, parse_cell, strip_comment
from massive_magic.errors import ParameterError

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
