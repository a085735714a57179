"""Card and dashboard references: every form a user copies out of Metabase."""

from __future__ import annotations

import pytest

from massive_magic.errors import BadCardRef
from massive_magic.refs import card_id, dashboard_id


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (484, 484),
        ("484", 484),
        (" 484 ", 484),
        ("484-daily-earnings", 484),
        ("https://massive.metabaseapp.com/question/484-daily-earnings", 484),
        ("https://massive.metabaseapp.com/question/484", 484),
        ("https://massive.metabaseapp.com/question/484-daily-earnings?country=US#abc", 484),
        ("https://massive.metabaseapp.com/question/484-slug/notebook", 484),
        ("https://massive.metabaseapp.com/question/484-slug/123", 484),
        ("https://massive.metabaseapp.com/card/484-foo", 484),
        ("https://massive.metabaseapp.com/model/12-x", 12),
        ("https://massive.metabaseapp.com/metric/7-revenue", 7),
        ("http://127.0.0.1:8123/question/9#eyJkYXRh", 9),
        ("/question/484-daily-earnings", 484),
        ("https://example.com/metabase/question/31-x", 31),
    ],
)
def test_card_id_accepts(ref: object, expected: int) -> None:
    assert card_id(ref) == expected


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("https://massive.metabaseapp.com/dashboard/12-overview", "dashboard, not a card"),
        ("https://massive.metabaseapp.com/dashboard/12?tab=3", "dashboard, not a card"),
        ("https://massive.metabaseapp.com/question#eyJkYXRhc2V0", "unsaved question"),
        ("https://massive.metabaseapp.com/collection/5-finance", "Cannot find a card id"),
        ("daily-earnings", "not a card reference"),
        ("", "not a card reference"),
        ("0", "not a card reference"),
        (0, "positive integers"),
        (-3, "positive integers"),
        (True, "not a card reference"),
        (4.5, "not a card reference"),
        (None, "not a card reference"),
    ],
)
def test_card_id_rejects_with_a_hint(ref: object, fragment: str) -> None:
    with pytest.raises(BadCardRef, match=fragment) as info:
        card_id(ref)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (12, 12),
        ("12", 12),
        ("12-overview", 12),
        ("https://massive.metabaseapp.com/dashboard/12-overview?tab=3-main&country=US", 12),
        ("https://massive.metabaseapp.com/dashboard/12", 12),
    ],
)
def test_dashboard_id_accepts(ref: object, expected: int) -> None:
    assert dashboard_id(ref) == expected


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("https://massive.metabaseapp.com/question/484-x", "card, not a dashboard"),
        ("overview", "not a dashboard reference"),
        (0, "positive integers"),
        (None, "not a dashboard reference"),
        ("https://massive.metabaseapp.com/collection/5", "Cannot find a dashboard id"),
    ],
)
def test_dashboard_id_rejects(ref: object, fragment: str) -> None:
    with pytest.raises(BadCardRef, match=fragment):
        dashboard_id(ref)
