"""CardPicker driven from Python against the sandbox over real HTTP.

The widget is exercised the way a front end would: by setting widget values
(``search.value``, ``results.value``, input values) and clicking buttons, and
through its Python API (``select``, ``set_params``, ``load``, ``copy_code``).
Request counts come from the sandbox's log.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd
import pytest

import massive_magic
from massive_magic import (
    AccessDenied,
    BadCardRef,
    CardNotFound,
    Client,
    ParameterError,
    QueryFailed,
)
from massive_magic.card_picker import PICKER_WORDS, CardPicker
from massive_magic.errors import NextStep, Step
from massive_magic.links import parse_card_url
from massive_magic.parameters import build_parameters
from massive_magic.sandbox import Sandbox, demo

#: Cards in the demo catalogue by collection, as the search box should find them.
QA_CARDS = {demo.ALL_TYPES, demo.LARGE, demo.SEQUENCE}


@pytest.fixture
def picker(client: Client) -> CardPicker:
    return CardPicker(client)


def _html(p: CardPicker) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in p.output.outputs)


def _error_text(p: CardPicker) -> str:
    return "".join(o.get("data", {}).get("text/plain", "") for o in p.output.outputs)


def _input(p: CardPicker, name: str) -> Any:
    return next(i for i in p._inputs if i.name == name)


# --------------------------------------------------------------------------- card list, search


def test_card_list_is_fetched_once(srv: Sandbox, picker: CardPicker) -> None:
    ids = {card_id for _, card_id in picker.results.options}
    assert {demo.DAILY_EARNINGS, demo.EARNINGS_FILTERED, demo.SEQUENCE} <= ids
    for text in ("qa", "earn", "", "seq"):
        picker.search.value = text
    assert srv.count("GET", "/api/card") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("filtered", {demo.EARNINGS_FILTERED}),
        ("FILTERED", {demo.EARNINGS_FILTERED}),
        ("qa", QA_CARDS),  # by collection name
        ("qa seq", {demo.SEQUENCE}),  # every word must match
        (str(demo.BROKEN), {demo.BROKEN}),  # by id
        ("no card is called this", set()),
    ],
)
def test_search_filters_by_name_and_collection(
    picker: CardPicker, text: str, expected: set[int]
) -> None:
    picker.search.value = text
    assert {card_id for _, card_id in picker.results.options} == expected
    noun = "card matches" if len(expected) == 1 else "cards match"
    assert f"{len(expected)} {noun}" in picker.status.value


def test_the_list_is_capped_and_says_so(client: Client) -> None:
    class Small(CardPicker):
        max_results = 2

    p = Small(client)
    total = len(p.cards)
    assert total > 2
    assert len(p.results.options) == 2
    assert f"{total} cards; showing 2, type to narrow" in p.status.value
    p.search.value = "qa"
    assert len(p.results.options) == 2
    assert "3 cards match; showing 2, type to narrow" in p.status.value
    p.search.value = "qa seq"
    assert [v for _, v in p.results.options] == [demo.SEQUENCE]
    assert "1 card matches<" in p.status.value


def test_search_keeps_the_selection_while_it_still_matches(picker: CardPicker) -> None:
    picker.results.value = demo.SEQUENCE
    picker.search.value = "seq"
    assert picker.results.value == demo.SEQUENCE
    picker.search.value = "filtered"
    assert picker.results.value is None
    assert picker.selected == demo.SEQUENCE  # the inputs stay until another card is chosen


# --------------------------------------------------------------------------- selection, inputs


def test_selecting_in_the_list_shows_description_and_typed_inputs(
    srv: Sandbox, picker: CardPicker
) -> None:
    picker.search.value = "filtered"
    picker.results.value = demo.EARNINGS_FILTERED
    assert picker.selected == demo.EARNINGS_FILTERED
    assert "Daily earnings with date, country, platform and minimum filters." in (
        picker.description.value
    )
    kinds = {i.name: (i.kind, [type(c) for c in i.controls]) for i in picker._inputs}
    assert kinds == {
        "date": ("date-range", [widgets.DatePicker, widgets.DatePicker, widgets.Text]),
        "country": ("multi-choice", [widgets.SelectMultiple]),
        "platform": ("text", [widgets.Text]),
        "min_earnings": ("number", [widgets.FloatText]),
    }
    country = _input(picker, "country").controls[0]
    assert [v for _, v in country.options] == list(demo.COUNTRIES)
    # the default date range is shown in the pickers and sent explicitly
    start, end, _other = _input(picker, "date").controls
    assert (start.value, end.value) == (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert picker.params == {"date": "2024-01-01~2024-01-31"}
    assert picker.code_box.value == (
        f'%%massive_card {demo.EARNINGS_FILTERED} -o df\ndate = "2024-01-01~2024-01-31"\n'
    )
    assert len(picker.parameters.children) == 4
    assert not picker.load_button.disabled
    # metadata is read once; selecting again is served from the client's cache
    picker.select(demo.SEQUENCE)
    picker.select(demo.EARNINGS_FILTERED)
    assert srv.count("GET", f"/api/card/{demo.EARNINGS_FILTERED}") == 1


def test_listed_values_for_a_single_value_parameter_make_a_dropdown(picker: CardPicker) -> None:
    picker.select(demo.REQUIRED_PARAM)
    (app,) = picker._inputs
    (dropdown,) = app.controls
    assert isinstance(dropdown, widgets.Dropdown)
    assert [v for _, v in dropdown.options] == [None, *demo.APPS]
    assert app.get() is None
    assert "not set (required)" in app.hint.value
    dropdown.value = demo.APPS[1]
    assert picker.params == {"app": demo.APPS[1]}
    assert app.hint.value == ""


def test_number_box_starts_at_the_default(picker: CardPicker) -> None:
    picker.select(demo.SEQUENCE)
    (rows,) = picker._inputs
    assert rows.kind == "number"
    assert rows.controls[0].value == 10
    assert picker.params == {"rows": 10}


def test_an_untouched_number_box_without_default_is_not_sent(picker: CardPicker) -> None:
    picker.select(demo.EARNINGS_FILTERED)
    box = _input(picker, "min_earnings")
    assert "min_earnings" not in picker.params
    assert "not set" in box.hint.value
    box.controls[0].value = 2.5
    assert picker.params["min_earnings"] == 2.5
    box.controls[0].value = 0
    assert picker.params["min_earnings"] == 0  # touched: 0 is a real value now
    assert "min_earnings = 0\n" in picker.code_box.value


def test_set_params_by_slug_or_display_name(picker: CardPicker) -> None:
    picker.select(demo.EARNINGS_FILTERED)
    picker.set_params({"Country": ["US", "DE"]}, date="2024-02-01~2024-02-29", platform="Android")
    assert picker.params == {
        "date": "2024-02-01~2024-02-29",
        "country": ["US", "DE"],
        "platform": "Android",
    }
    with pytest.raises(ValueError, match="no parameter 'region'"):
        picker.set_params(region="EU")


# --------------------------------------------------------------------------- the card's link


def _href(p: CardPicker) -> str:
    """The href of the link line, as a browser reads it (HTML entities undone)."""
    match = re.search(r"<a href='([^']*)'", p.link.value)
    assert match, p.link.value
    return html.unescape(match.group(1))


def test_the_link_follows_the_filters_and_reads_back(srv: Sandbox, picker: CardPicker) -> None:
    assert picker.url is None and picker.link.value == ""
    picker.select(demo.EARNINGS_FILTERED)
    decls = picker.card["parameters"] if picker.card else []
    first = _href(picker)
    assert first == picker.url
    assert first.startswith(f"{srv.url}/question/{demo.EARNINGS_FILTERED}-earnings-by-country")
    assert parse_card_url(first) == (
        srv.url,
        demo.EARNINGS_FILTERED,
        {"date": ("2024-01-01", "2024-01-31")},  # the default the inputs show, as sent
    )

    picker.set_params({"Country": ["US", "DE"]}, platform="Android & iOS")
    _input(picker, "min_earnings").controls[0].value = 2.5  # as a front end sets it
    second = _href(picker)
    assert second != first
    server, ident, values = parse_card_url(second)
    assert (server, ident) == (srv.url, demo.EARNINGS_FILTERED)
    assert values == {
        "date": ("2024-01-01", "2024-01-31"),
        "country": ["US", "DE"],
        "platform": "Android & iOS",
        "min_earnings": "2.5",
    }
    # the link's values build the very parameters Load sends
    assert build_parameters(decls, values) == build_parameters(decls, picker.params)

    picker.set_params(country=None, date="past30days")
    _, _, values = parse_card_url(_href(picker))
    assert values == {"date": "past30days", "platform": "Android & iOS", "min_earnings": "2.5"}
    assert build_parameters(decls, values) == build_parameters(decls, picker.params)
    assert srv.count("POST", f"/api/card/{demo.EARNINGS_FILTERED}/query*") == 0  # no load


def test_a_value_the_card_refuses_shows_no_link_and_the_widget_lives_on(
    picker: CardPicker,
) -> None:
    picker.select(demo.EARNINGS_FILTERED)
    _input(picker, "date").controls[2].value = "last fortnight"
    assert "No link:" in picker.link.value and "<a " not in picker.link.value
    assert "last fortnight" in picker.code_box.value  # the code box still follows
    with pytest.raises(ParameterError, match="'date'"):
        picker.url  # noqa: B018
    _input(picker, "date").controls[2].value = "thismonth"
    assert parse_card_url(_href(picker))[2]["date"] == "thismonth"


# --------------------------------------------------------------------------- load


def test_load_fetches_once_and_shows_the_first_rows(srv: Sandbox, picker: CardPicker) -> None:
    picker.select(demo.SEQUENCE)
    picker.set_params(rows=25)
    srv.reset_log()
    df = picker.load()
    assert picker.df is df
    assert list(df["n"]) == list(range(1, 26))
    assert str(df["n"].dtype) == "Int64"
    assert picker.code == f"%%massive_card {demo.SEQUENCE} -o df\nrows = 25\n"
    assert srv.count("POST", f"/api/card/{demo.SEQUENCE}/query*") == 1
    table = _html(picker)
    assert "<table" in table and "row 10" in table and "row 11" not in table
    assert table.count("<tr") == 1 + 10  # header + first rows
    assert "Loaded first 10 of 25 rows × 2 columns." in picker.status.value
    assert not picker.load_button.disabled


def test_load_reports_progress_and_blocks_a_second_click(picker: CardPicker) -> None:
    picker.select(demo.SEQUENCE)
    seen: list[tuple[str, Any]] = []
    picker.status.observe(lambda c: seen.append(("status", c["new"])), names="value")
    picker.load_button.observe(lambda c: seen.append(("disabled", c["new"])), names="disabled")
    picker.load_button.click()
    assert [value for kind, value in seen if kind == "disabled"] == [True, False]
    statuses = [re.sub("<[^>]+>", "", v) for kind, v in seen if kind == "status"]
    assert statuses == [f"Loading card {demo.SEQUENCE}…", "Loaded all 10 rows × 2 columns."]
    (first,) = picker.progress.children  # where the client's progress bar is captured
    assert isinstance(first, widgets.Output)
    picker.load()
    (second,) = picker.progress.children
    assert second is not first  # a fresh capture per load
    picker.select(demo.REQUIRED_PARAM)
    assert picker.progress.children == ()
    assert picker.output.outputs == ()


def test_load_button_with_listed_and_date_values(picker: CardPicker) -> None:
    picker.select(demo.EARNINGS_FILTERED)
    start, end, _other = _input(picker, "date").controls
    start.value, end.value = dt.date(2024, 3, 1), dt.date(2024, 3, 3)
    _input(picker, "country").controls[0].value = ("US", "DE")
    picker.load_button.click()
    df = picker.df
    assert df is not None
    assert set(df["country"]) == {"US", "DE"}
    assert df["day"].min() == pd.Timestamp("2024-03-01")
    assert df["day"].max() == pd.Timestamp("2024-03-03")
    assert len(df) == 3 * len(demo.APP_PLATFORMS) * 2
    assert picker.code == (
        f"%%massive_card {demo.EARNINGS_FILTERED} -o df\n"
        'date = "2024-03-01~2024-03-03"\n'
        'country = ["US", "DE"]\n'
    )


def test_code_tracks_the_inputs_and_copy_uses_set_next_input(client: Client) -> None:
    sent: list[str] = []
    p = CardPicker(client, set_next_input=sent.append)
    p.select(demo.REQUIRED_PARAM)
    p.set_params(app="PuzzleDash")
    p.copy_button.click()
    expected = f'%%massive_card {demo.REQUIRED_PARAM} -o df\napp = "PuzzleDash"\n'
    assert sent == [expected]
    assert p.code_box.value == expected
    assert "new cell" in p.status.value
    assert p.code is None  # nothing loaded yet


def test_copy_without_set_next_input_shows_the_code(picker: CardPicker) -> None:
    picker.select(demo.SEQUENCE)
    assert picker.copy_code() == f"%%massive_card {demo.SEQUENCE} -o df\nrows = 10\n"
    assert "copy (Ctrl+C)" in picker.status.value


# --------------------------------------------------------------------------- errors


def test_a_failing_card_shows_a_short_error_and_the_widget_lives_on(
    srv: Sandbox, picker: CardPicker
) -> None:
    picker.select(demo.BROKEN)
    with pytest.raises(QueryFailed):
        picker.load()
    message = _error_text(picker)
    assert message.startswith("Error: ")
    assert "partner_payoutz" in message
    assert "Traceback" not in message and len(message) < 400
    assert "massive-picker-error" in _html(picker)
    assert picker.df is None and picker.code is None
    assert not picker.load_button.disabled

    picker.load_button.click()  # from the button: shown, not raised
    assert "partner_payoutz" in _error_text(picker)

    picker.results.value = demo.SEQUENCE
    picker.load_button.click()
    assert picker.df is not None and len(picker.df) == 10
    assert "<table" in _html(picker)


def test_a_failing_load_under_ipython_is_short_and_raised(picker: CardPicker) -> None:
    """With a live shell, ipywidgets' Output context would print a traceback and
    swallow the error; the picker must still show one line and raise."""
    from IPython.core.interactiveshell import InteractiveShell

    had_shell = InteractiveShell.initialized()
    InteractiveShell.instance()
    try:
        picker.select(demo.BROKEN)
        with pytest.raises(QueryFailed):
            picker.load()
        (output,) = picker.output.outputs
        assert output["data"]["text/plain"].startswith("Error: ")
        assert "Traceback" not in output["data"]["text/plain"]
    finally:
        if not had_shell:
            InteractiveShell.clear_instance()


def test_a_restricted_card_shows_access_denied(srv: Sandbox, picker: CardPicker) -> None:
    with pytest.raises(AccessDenied):
        picker.select(demo.RESTRICTED)
    assert f"may not read card {demo.RESTRICTED}" in _error_text(picker)
    assert picker.selected is None


@pytest.mark.parametrize(
    ("ref", "error"),
    [(999_999, CardNotFound), ("not a card", BadCardRef)],
)
def test_select_errors(picker: CardPicker, ref: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        picker.select(ref)
    assert _error_text(picker).startswith("Error: ")


def test_load_before_select(picker: CardPicker) -> None:
    with pytest.raises(ValueError, match="Select a card first"):
        picker.load()
    picker.load_button.click()  # disabled in a browser; from Python it only shows the message
    assert _error_text(picker) == "Error: Select a card first."


def test_a_refused_login_still_gives_a_widget(srv: Sandbox, tmp_path: Path) -> None:
    with Client(srv.url, srv.username, "wrong password", cache_dir=tmp_path) as bad:
        p = CardPicker(bad)
    assert p.results.options == ()
    assert "Error: " in _error_text(p)
    assert "wrong password" not in _error_text(p)


def test_massive_magic_picker_stays_the_function_after_the_widget_module_loads() -> None:
    """The widget lives in ``card_picker`` so that importing it never rebinds the
    package attribute ``massive_magic.picker`` (the function) to a module."""
    import massive_magic.card_picker as module

    assert massive_magic.picker is module.picker
    assert module.CardPicker is massive_magic.CardPicker


def test_picker_without_client_reads_the_environment(
    srv: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASSIVE_METABASE_URL", srv.url)
    monkeypatch.setenv("MASSIVE_METABASE_API_KEY", srv.api_key)
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(tmp_path))
    p = massive_magic.picker()
    assert isinstance(p, massive_magic.CardPicker)
    assert isinstance(p, widgets.VBox)
    assert demo.SEQUENCE in {card_id for _, card_id in p.results.options}
    p.client.close()


# --------------------------------------------------------------------------- code generation


def test_generated_code_yields_the_same_frame_in_ipython(
    srv: Sandbox, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("massive_magic.magics")
    from IPython.core.interactiveshell import InteractiveShell

    p = CardPicker(client)
    p.select(demo.EARNINGS_FILTERED)
    p.set_params(country=["DE", "GB"], date="2024-05-01~2024-05-07", min_earnings=1.5)
    expected = p.load()

    monkeypatch.setenv("PICKER_TEST_KEY", srv.api_key)
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(tmp_path / "shell-cache"))
    created = not InteractiveShell.initialized()  # else reuse the shell other tests made
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "massive_magic")
        shell.run_line_magic("massive_login", f"--url {srv.url} --api-key-env PICKER_TEST_KEY")
        result = shell.run_cell(p.code)
        result.raise_error()
        pd.testing.assert_frame_equal(shell.user_ns["df"], expected)

        shown = shell.run_line_magic("massive_cards", "")
        assert isinstance(shown, CardPicker)
        assert demo.SEQUENCE in {card_id for _, card_id in shown.results.options}
    finally:
        shell.run_line_magic("unload_ext", "massive_magic")
        shell.user_ns.pop("df", None)
        if created:
            InteractiveShell.clear_instance()


# --------------------------------------------------------------------------- issue #14 / #10


def test_listed_values_show_metabase_labels(srv: Sandbox, picker: CardPicker) -> None:
    labelled = [["DE", "Germany"], ["GB", "United Kingdom"], "FR"]
    cid = srv.add_card(
        "Labelled",
        [("country", "type/Text")],
        parameters=[
            {"name": "one", "type": "text", "values": labelled},
            {
                "name": "many",
                "type": "dimension",
                "widget_type": "string/=",
                "values": labelled,
                "multi": True,
            },
        ],
        rows=[["DE"]],
    )
    picker.select(cid)
    one, many = picker._inputs
    assert (one.kind, many.kind) == ("choice", "multi-choice")
    assert list(one.controls[0].options) == [
        ("—", None),
        ("Germany", "DE"),
        ("United Kingdom", "GB"),
        ("FR", "FR"),
    ]
    assert list(many.controls[0].options) == [
        ("Germany", "DE"),
        ("United Kingdom", "GB"),
        ("FR", "FR"),
    ]


def test_errors_are_worded_for_the_picker(picker: CardPicker) -> None:
    picker._show_error(CardNotFound("Card 9 not found", next_steps=[NextStep(Step.LIST_CARDS)]))
    assert _error_text(picker) == (
        "Error: Card 9 not found. Search the list above for the cards you can read."
    )
    picker._show_error(
        QueryFailed("Card 515 failed", next_steps=[NextStep(Step.GIVE_PARAMETER, names=("app",))])
    )
    assert _error_text(picker) == "Error: Card 515 failed. Give app a value in the inputs above."
    assert all(PICKER_WORDS[step] for step in Step)


def test_load_stores_the_frame_in_a_namespace(client: Client) -> None:
    namespace: dict[str, Any] = {}
    p = CardPicker(client, namespace=namespace, variable="daily")
    p.select(demo.SEQUENCE)
    df = p.load()
    assert namespace == {"daily": df}
    assert p.code is not None and p.code.startswith(f"%%massive_card {demo.SEQUENCE} -o daily\n")
    assert "Loaded all 10 rows × 2 columns. Stored in daily." in p.status.value


def test_a_pasted_link_selects_its_card_with_its_filters(srv: Sandbox, picker: CardPicker) -> None:
    """A card link copied from Metabase, pasted into the search box, opens it filtered."""
    link = (
        f"{srv.url}/question/{demo.EARNINGS_FILTERED}-earnings-by-country"
        "?country=DE&country=GB&date=2024-02-01~2024-02-29&platform=Android"
    )
    picker.search.value = link  # as the front end sets it
    assert picker.selected == demo.EARNINGS_FILTERED
    assert [value for _, value in picker.results.options] == [demo.EARNINGS_FILTERED]
    _, _, values = parse_card_url(picker.url or "")
    assert values["country"] == ["DE", "GB"] and values["platform"] == "Android"
    assert values["date"] == ("2024-02-01", "2024-02-29")
    decls = picker.card["parameters"] if picker.card else []
    _, _, wanted = parse_card_url(link)

    def sent(values: Any) -> list[str]:  # the parameter objects Load would send, any order
        return sorted(json.dumps(p, sort_keys=True) for p in build_parameters(decls, values))

    assert sent(picker.params) == sent(wanted)
    assert srv.count("POST", f"/api/card/{demo.EARNINGS_FILTERED}/query*") == 0  # not loaded


def test_a_pasted_link_of_another_server_is_an_error_in_the_widget(picker: CardPicker) -> None:
    picker.search.value = "https://other.example.org/question/497-x?country=DE"
    assert picker.selected is None
    shown = str(picker.output.outputs)
    assert ("other.example.org" in shown and "is not on" in shown) or "other" in shown
