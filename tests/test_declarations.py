"""ParameterDecl and name matching: the one reading of Metabase's declarations (no server)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from declaration_samples import DECLS, dim, var

from massive_magic import parameters
from massive_magic.declarations import (
    ParameterDecl,
    declarations,
    describe_parameters,
    match_parameter,
)


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


def test_describe_parameters() -> None:
    assert describe_parameters(DECLS[:2]) == (
        "min_orders ('Min orders', number/=), day (date/all-options, required)"
    )


COUNTRY_JSON = dim(
    "country",
    "string/=",
    "Country",
    values_source_type="static-list",
    values_source_config={"values": [["DE", "Germany"], ["GB", "United Kingdom"], "FR"]},
    isMultiSelect=False,
)


def test_from_json_keeps_labels_and_multi_select() -> None:
    decl = ParameterDecl.from_json(COUNTRY_JSON)
    assert decl.choices == (("DE", "Germany"), ("GB", "United Kingdom"), ("FR", "FR"))
    assert decl.values == ["DE", "GB", "FR"]
    assert decl.labels == ["Germany", "United Kingdom", "FR"]
    assert decl.multi_select is False  # Metabase's isMultiSelect wins over the type
    assert decl.widget == "choice"
    assert (decl.key, decl.label, decl.id) == ("country", "Country", "id-country")
    assert decl.target == ["dimension", ["template-tag", "country"]]
    assert not decl.single_value
    hash(decl)  # frozen and hashable, although target and default are JSON lists


def test_info_is_what_card_info_shows() -> None:
    assert ParameterDecl.from_json(COUNTRY_JSON).info() == {
        "slug": "country",
        "name": "Country",
        "type": "string/=",
        "required": False,
        "default": None,
        "multi_select": False,
        "values": ["DE", "GB", "FR"],
        "labels": ["Germany", "United Kingdom", "FR"],
    }
    assert ParameterDecl.from_json(DECLS[1]).info() == {
        "slug": "day",
        "name": "Day",
        "type": "date/all-options",
        "required": True,
        "default": None,
        "multi_select": False,
    }


@pytest.mark.parametrize("raw", [COUNTRY_JSON, *DECLS])
def test_info_reads_back_to_the_same_declaration(raw: dict[str, Any]) -> None:
    """The picker gets card_info's dicts; reading them loses only id and target."""
    decl = ParameterDecl.from_json(raw)
    again = ParameterDecl.from_json(decl.info())
    assert again == dataclasses.replace(decl, id=None, target=None)
    assert again.widget == decl.widget


@pytest.mark.parametrize(
    ("raw", "multi", "widget"),
    [
        (dim("c", "string/=", values=["a"]), True, "multi-choice"),  # a field filter: a list
        (dim("c", "string/=", values=["a"], isMultiSelect=False), False, "choice"),
        (var("c", "category", values=["a"]), False, "choice"),
        (var("n", "number/=", values=[1, 2]), False, "choice"),  # a raw variable: one value
        (dim("c", "category", values=["a"], isMultiSelect=True), True, "multi-choice"),
        ({"id": "x", "slug": "c", "type": "string/="}, True, "text"),  # dashboard filter
        (var("d", "date/single"), False, "date"),
        (dim("d", "date/all-options"), False, "date-range"),
        (dim("d", "date/range"), False, "date-range"),
        (dim("d", "date/month-year"), False, "text"),
        (dim("n", "number/between"), False, "number-range"),
        (var("n", "number"), False, "number"),
        (dim("b", "boolean/="), False, "bool"),
        (dim("x", "temporal-unit"), False, "text"),
        ({"slug": "bare"}, False, "text"),
    ],
)
def test_widget_and_multi_select(raw: dict[str, Any], multi: bool, widget: str) -> None:
    decl = ParameterDecl.from_json(raw)
    assert (decl.multi_select, decl.widget) == (multi, widget)


def test_declarations_of_a_card_or_a_list() -> None:
    card = {"id": 1, "parameters": [COUNTRY_JSON, DECLS[0]]}
    assert [d.key for d in declarations(card)] == ["country", "min_orders"]
    assert declarations([COUNTRY_JSON]) == (ParameterDecl.from_json(COUNTRY_JSON),)
    assert declarations({"parameters": None}) == ()


def test_the_names_stay_importable_from_parameters() -> None:
    """Modules and notebooks import these from ``parameters``, where they used to live."""
    assert parameters.ParameterDecl is ParameterDecl
    assert parameters.declarations is declarations
    assert parameters.describe_parameters is describe_parameters
    assert parameters.match_parameter is match_parameter
