"""Card info as HTML and plain text: structure, escaping, facts from the sandbox's cards."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from massive_magic import Client
from massive_magic.card_view import (
    column_dtypes,
    edit_facts,
    editor_name,
    render_card_info_html,
    render_card_info_text,
)
from massive_magic.sandbox import demo


class Tables(HTMLParser):
    """Tables by class -> rows of cell texts; links; headings; paragraphs."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[tuple[str, str]] = []
        self.headings: list[str] = []
        self.paragraphs: list[str] = []
        self.tags: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._text: list[str] | None = None
        self._href: str | None = None
        self.feed(text)
        self.close()

    def facts(self) -> dict[str, str]:
        """The summary table as label -> text."""
        return {row[0]: row[1] for row in self.tables["massive-card-facts"]}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h4", "h5", "p"):
            self._text = []
        elif tag == "a":
            self._href = found.get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag in ("h4", "h5") and self._text is not None:
            self.headings.append("".join(self._text))
            self._text = None
        elif tag == "p" and self._text is not None:
            self.paragraphs.append("".join(self._text))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._text is not None:
            self._text.append(data)
        if self._href is not None:
            self.links.append((self._href, data))
            self._href = None


INFO: dict[str, Any] = {
    "id": 497,
    "name": "Earnings <by> country & co",
    "description": "Filters: <b>date</b> & country",
    "collection": "Partner \"reporting\"",
    "type": "question",
    "url": "https://mb.example/question/497-earnings?country=DE&country=GB",
    "updated_at": "2024-05-01T08:45:00.120Z",
    "last_edited_by": "Ana <Ruiz>",
    "parameters": [
        {"slug": "date", "name": "Date", "type": "date/all-options",
         "default": "2024-01-01~2024-01-31", "required": True, "values": None},
        {"slug": "country", "name": "<Country>", "type": "string/=", "default": None,
         "required": False, "values": ["DE", "GB", "<script>"]},
    ],
    "columns": [
        {"name": "day", "display_name": "Day", "type": "type/Date"},
        {"name": "n", "display_name": "N <count>", "type": "type/Integer", "dtype": "given"},
        {"name": "odd", "display_name": "Odd", "type": "type/Unheard"},
    ],
}  # fmt: skip


def test_html_structure_and_escaping() -> None:
    out = render_card_info_html(INFO)
    assert "<script>" not in out and "<b>" not in out and "<Ruiz>" not in out
    assert "&lt;script&gt;" in out and "&amp;" in out and "&quot;reporting&quot;" in out
    page = Tables(out)
    assert page.headings == ["Earnings <by> country & co (card 497)", "Parameters", "Columns"]
    assert page.paragraphs == ["Filters: <b>date</b> & country"]
    facts = page.facts()
    assert facts["ID"] == "497"
    assert facts["Collection"] == 'Partner "reporting"'
    assert facts["Last edited"] == "by Ana <Ruiz> on 2024-05-01 08:45 UTC"
    assert facts["Open in Metabase"] == INFO["url"]
    assert page.links == [(INFO["url"], INFO["url"])]
    params = page.tables["massive-card-parameters"]
    assert params[0] == ["Slug", "Name", "Type", "Default", "Required", "Allowed values"]
    assert params[1] == ["date", "Date", "date/all-options", "2024-01-01~2024-01-31", "yes", ""]
    assert params[2] == ["country", "<Country>", "string/=", "", "no", "DE, GB, <script>"]
    columns = page.tables["massive-card-columns"]
    assert columns[0] == ["Column", "Display name", "Metabase type", "pandas dtype"]
    assert columns[1] == ["day", "Day", "type/Date", "datetime64[us]"]
    assert columns[2] == ["n", "N <count>", "type/Integer", "given"]  # a given dtype wins
    assert columns[3] == ["odd", "Odd", "type/Unheard", "object"]  # unknown: object, no warning


def test_text_rendering_lines() -> None:
    out = render_card_info_text(INFO)
    lines = out.splitlines()
    assert lines[0] == "Earnings <by> country & co (card 497)"
    assert lines[1] == "Filters: <b>date</b> & country"  # text for a terminal: not escaped
    assert any(
        line.split(":", 1)[0] == "Open in Metabase" and INFO["url"] in line for line in lines
    )
    assert any(line.startswith("Last edited:") and "Ana <Ruiz>" in line for line in lines)
    params = lines[lines.index("Parameters:") + 1 : lines.index("Parameters:") + 4]
    assert params[0].split() == ["Slug", "Name", "Type", "Default", "Required", "Allowed", "values"]
    assert params[1].split() == ["date", "Date", "date/all-options", "2024-01-01~2024-01-31", "yes"]
    assert params[2].split() == ["country", "<Country>", "string/=", "no", "DE,", "GB,", "<script>"]
    # the table's columns line up: each header starts where its cells start
    start = params[0].index("Type")
    assert params[1][start:].startswith("date/all-options")
    assert params[2][start:].startswith("string/=")
    columns = lines[lines.index("Columns:") + 1 :]
    assert [c.split()[0] for c in columns] == ["Column", "day", "n", "odd"]
    assert columns[1].split()[-1] == "datetime64[us]"


def test_minimal_info_and_missing_parts() -> None:
    info: dict[str, Any] = {"id": 7, "name": None, "parameters": [], "columns": []}
    page = Tables(render_card_info_html(info))
    assert page.headings[0] == "(no name) (card 7)"
    assert page.paragraphs == ["None.", "Not known until the card has run once in Metabase."]
    assert page.facts() == {"ID": "7"}
    assert page.links == []
    text = render_card_info_text(info)
    assert "Parameters: none" in text and "Columns: not known until the card has run" in text


def test_link_from_the_server_when_info_has_none() -> None:
    info = {"id": 12, "name": "Users", "type": "model"}
    page = Tables(render_card_info_html(info, server="https://mb.example/"))
    assert page.links == [
        ("https://mb.example/model/12-users", "https://mb.example/model/12-users")
    ]
    assert "https://mb.example/model/12-users" in render_card_info_text(
        info, server="https://mb.example"
    )


def test_only_web_urls_become_links() -> None:
    info = {"id": 1, "url": "javascript:alert(1)"}
    out = render_card_info_html(info)
    page = Tables(out)
    assert page.links == []
    assert "<a" not in out
    assert page.facts()["Open in Metabase"] == "javascript:alert(1)"


def test_long_value_lists_are_cut() -> None:
    info = {"id": 1, "parameters": [{"slug": "n", "values": list(range(30))}]}
    row = Tables(render_card_info_html(info)).tables["massive-card-parameters"][1]
    assert row[-1] == ", ".join(map(str, range(12))) + ", … (+18 more)"


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("2024-05-01T08:45:00.120Z", "2024-05-01 08:45 UTC"),
        ("2024-05-01T08:45:00+02:00", "2024-05-01 08:45 +0200"),
        ("2024-05-01T08:45:00", "2024-05-01 08:45"),
        ("yesterday-ish", "yesterday-ish"),
        (None, ""),
    ],
)
def test_edit_time(stamp: str | None, shown: str) -> None:
    info = {"id": 1, "updated_at": stamp, "last_edited_by": "A"}
    facts = Tables(render_card_info_html(info)).facts()
    assert facts["Last edited"] == ("by A on " + shown if shown else "by A")


@pytest.mark.parametrize(
    ("who", "name"),
    [
        ({"first_name": "Ana", "last_name": "Ruiz", "email": "ana@x"}, "Ana Ruiz"),
        ({"first_name": None, "last_name": None, "email": "ana@x"}, "ana@x"),
        ({"first_name": "Ana"}, "Ana"),
        (" Ana ", "Ana"),
        ({}, ""),
        (None, ""),
        (3, ""),
    ],
)
def test_editor_name(who: Any, name: str) -> None:
    assert editor_name(who) == name


def test_edit_facts_from_card_json() -> None:
    card = demo.build_cards()[demo.EARNINGS_FILTERED].describe()
    assert edit_facts(card) == {
        "updated_at": "2024-04-30T14:02:11.310Z",
        "last_edited_by": "Massive Analytics",
    }
    assert edit_facts({"updated_at": "2024-01-01T00:00:00Z"}) == {
        "updated_at": "2024-01-01T00:00:00Z",
        "last_edited_by": None,
    }


def test_column_dtypes_with_a_known_zone() -> None:
    cols = [{"name": "t", "type": "type/DateTime"}, {"name": "x", "type": "type/Text"}]
    assert column_dtypes(cols, "Europe/Berlin") == [
        "datetime64[us, Europe/Berlin]",
        "string[pyarrow]",
    ]
    assert column_dtypes(cols) == ["datetime64[us, <results timezone>]", "string[pyarrow]"]
    assert column_dtypes([]) == []


# -- against the sandbox: the dtypes shown are the ones a read gives ---------------


@pytest.fixture
def client(sandbox: Any, tmp_path: Path) -> Iterator[Client]:
    with Client(
        sandbox.url, sandbox.username, sandbox.password, cache_dir=tmp_path, progress=False
    ) as mb:
        yield mb


def _dtype_name(dtype: Any) -> str:
    return f"string[{dtype.storage}]" if isinstance(dtype, pd.StringDtype) else str(dtype)


@pytest.mark.parametrize("cid", [demo.ALL_TYPES, demo.EARNINGS_FILTERED])
def test_info_of_a_sandbox_card(client: Client, cid: int) -> None:
    raw = client._card(cid)
    info = {**client.card_info(cid), **edit_facts(raw)}
    page = Tables(render_card_info_html(info, server=client.url))
    facts = page.facts()
    assert facts["Last edited"] == "by Massive Analytics on 2024-04-30 14:02 UTC"
    assert facts["Open in Metabase"].startswith(f"{client.url}/question/{cid}-")
    shown = {row[0]: row[3] for row in page.tables["massive-card-columns"][1:]}
    frame = client.card(cid)
    zone = frame.attrs["massive"].get("results_timezone")
    assert list(shown) == list(frame.columns)
    for name, dtype in frame.dtypes.items():
        assert shown[str(name)].replace("<results timezone>", str(zone)) == _dtype_name(dtype), name
    declared = [p["slug"] for p in raw["parameters"]]
    if declared:
        assert [row[0] for row in page.tables["massive-card-parameters"][1:]] == declared
