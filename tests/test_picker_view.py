"""What the picker shows, as pure text and HTML (no widgets, no server)."""

from __future__ import annotations

import pytest

from massive_magic.errors import Step
from massive_magic.picker_view import (
    PICKER_WORDS,
    card_heading,
    card_label,
    card_records,
    link_line,
    status_line,
)


def test_every_step_has_words() -> None:
    assert all(PICKER_WORDS[step] for step in Step)


def test_link_line_escapes_and_links_only_http() -> None:
    url = "https://mb.example/question/497-x?platform=A%20%26%20B&q='x'"
    line = link_line(url)
    assert line.startswith("<a href='https://mb.example/question/497-x?platform=A%20%26%20B&amp;")
    assert "'x'" not in line and "&#x27;x&#x27;" in line
    assert "<a " not in link_line("javascript:alert(1)")
    assert link_line(None) == link_line("") == ""


def test_card_heading_and_label_escape_metabase_text() -> None:
    card = {"id": 7, "name": "<b>Rev</b>", "collection": {"name": "Q&A"}, "description": None}
    assert card_heading(card) == (
        "<b>&lt;b&gt;Rev&lt;/b&gt;</b> (#7) in <i>Q&amp;A</i><br>No description."
    )
    assert card_label(card) == "<b>Rev</b>  ·  Q&A  (#7)"  # a Select shows text, not HTML


@pytest.mark.parametrize("error", [False, True])
def test_status_line(error: bool) -> None:
    assert status_line("") == ""
    assert ("#b00020" in status_line("<x>", error=error)) is error
    assert "&lt;x&gt;" in status_line("<x>", error=error)


def test_card_records_from_a_list() -> None:
    assert card_records([{"id": 1}]) == [{"id": 1}]
    with pytest.raises(TypeError, match="mapping"):
        card_records([1])
