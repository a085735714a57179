"""The picker's per-parameter inputs: the widget each declaration calls for, read back.

No server: an input is built from a declaration (Metabase's JSON) and driven by its value.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pytest

from massive_magic.picker_inputs import make_input


@pytest.mark.parametrize(
    ("decl", "kind", "controls", "value"),
    [
        ({"slug": "d", "type": "date/single"}, "date", [widgets.DatePicker], "2024-03-05"),
        ({"slug": "d", "type": "date"}, "date", [widgets.DatePicker], "2024-03-05"),
        (
            {"slug": "d", "type": "date/range"},
            "date-range",
            [widgets.DatePicker, widgets.DatePicker],
            "2024-03-01~2024-03-31",
        ),
        (
            {"slug": "d", "type": "date/range"},
            "date-range",
            [widgets.DatePicker, widgets.DatePicker],
            "2024-03-01~",
        ),
        (
            {"slug": "d", "type": "date/all-options"},
            "date-range",
            [widgets.DatePicker, widgets.DatePicker, widgets.Text],
            "past30days",
        ),
        (
            {"slug": "d", "type": "date/all-options"},
            "date-range",
            [widgets.DatePicker, widgets.DatePicker, widgets.Text],
            "2024-03-05",
        ),
        ({"slug": "m", "type": "date/month-year"}, "text", [widgets.Text], "2024-03"),
        ({"slug": "n", "type": "number"}, "number", [widgets.FloatText], 42),
        ({"slug": "n", "type": "number/>="}, "number", [widgets.FloatText], 1.5),
        (
            {"slug": "n", "type": "number/between"},
            "number-range",
            [widgets.FloatText, widgets.FloatText],
            [1, 9],
        ),
        (
            {"slug": "n", "type": "number/between"},
            "number-range",
            [widgets.FloatText, widgets.FloatText],
            [None, 9],
        ),
        ({"slug": "t", "type": "category"}, "text", [widgets.Text], "Widget"),
        ({"slug": "t", "type": "string/contains"}, "text", [widgets.Text], "abc"),
        ({"slug": "b", "type": "boolean/="}, "bool", [widgets.Dropdown], False),
        (
            {
                "slug": "c",
                "type": "string/=",
                "values_source_type": "static-list",
                "values_source_config": {"values": [["US", "United States"], ["DE", "Germany"]]},
            },
            "multi-choice",
            [widgets.SelectMultiple],
            ["DE"],
        ),
        (
            {
                "slug": "c",
                "type": "string/=",
                "isMultiSelect": False,
                "values_source_type": "static-list",
                "values_source_config": {"values": ["US", "DE"]},
            },
            "choice",
            [widgets.Dropdown],
            "DE",
        ),
        (
            {"slug": "c", "type": "category", "values": ["a", "b"]},
            "choice",
            [widgets.Dropdown],
            "b",
        ),
    ],
)
def test_each_parameter_type_gets_its_input(
    decl: dict[str, Any], kind: str, controls: list[type], value: Any
) -> None:
    item = make_input(decl)
    assert item.kind == kind
    assert [type(c) for c in item.controls] == controls
    assert item.get() is None
    item.set(value)
    assert item.get() == value
    item.set(None)
    assert item.get() is None


@pytest.mark.parametrize(
    ("decl", "value"),
    [
        ({"slug": "d", "type": "date/single"}, "past30days"),
        ({"slug": "d", "type": "date/range"}, "thismonth"),
        ({"slug": "n", "type": "number"}, "ten"),
        ({"slug": "c", "type": "category", "values": ["a", "b"]}, "z"),
        ({"slug": "c", "type": "string/=", "values": ["a", "b"]}, ["a", "z"]),
    ],
)
def test_a_value_that_cannot_fit_its_input_is_refused(decl: dict[str, Any], value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{decl['slug']}: "):
        make_input(decl).set(value)
