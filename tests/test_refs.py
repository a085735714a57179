"""Card and dashboard references: every form a user copies out of Metabase."""

from __future__ import annotations

import pytest

from massive_magic.errors import BadCardRef, Step
from massive_magic.refs import card_id, dashboard_id, url_origin


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


# -- issue #10: ASCII digits only, integral numbers, and the server a URL names --------


@pytest.mark.parametrize(
    "ref",
    [
        "٥٠١",  # Arabic-Indic digits: int() would read 501
        "٥٠١-all-column-types",
        "５０１",  # fullwidth digits
        "https://massive.metabaseapp.com/question/٥٠١-x",
        "/question/５０１",
    ],
)
def test_only_ascii_digits_make_an_id(ref: str) -> None:
    with pytest.raises(BadCardRef):
        card_id(ref)
    with pytest.raises(BadCardRef):
        dashboard_id(ref.replace("question", "dashboard"))


def test_integral_numbers_are_ids() -> None:
    np = pytest.importorskip("numpy")

    class Index:
        def __index__(self) -> int:
            return 501

    assert card_id(np.int64(501)) == 501
    assert card_id(np.uint16(501)) == 501
    assert card_id(Index()) == 501
    assert dashboard_id(np.int32(12)) == 12
    assert type(card_id(np.int64(501))) is int
    for bad in (np.True_, np.False_, np.float64(501.0), 501.0):
        with pytest.raises(BadCardRef, match="not a card reference"):
            card_id(bad)
    with pytest.raises(BadCardRef, match="positive integers"):
        card_id(np.int64(0))


SERVER = "https://massive.metabaseapp.com"


@pytest.mark.parametrize(
    ("ref", "server"),
    [
        ("https://massive.metabaseapp.com/question/484", SERVER),
        ("https://MASSIVE.metabaseapp.com/question/484", SERVER),
        ("https://massive.metabaseapp.com:443/question/484", SERVER),
        ("https://massive.metabaseapp.com/question/484", "https://massive.metabaseapp.com:443/"),
        ("http://massive.metabaseapp.com:80/question/484", "http://MASSIVE.metabaseapp.com"),
        ("https://example.com/metabase/question/484-x", "https://example.com/metabase"),
        ("http://127.0.0.1:8123/question/484", "http://127.0.0.1:8123"),
        ("http://[::1]:8123/question/484", "http://[::1]:8123/"),
        ("/question/484", SERVER),  # no server in a path
        ("484-daily-earnings", SERVER),
        (484, SERVER),
        ("https://other.example.org/question/484", None),  # no server to compare with
    ],
)
def test_a_url_of_the_same_server_is_read(ref: object, server: str | None) -> None:
    assert card_id(ref, server=server) == 484
    dash = ref.replace("question", "dashboard") if isinstance(ref, str) else ref
    assert dashboard_id(dash, server=server) == 484


@pytest.mark.parametrize(
    ("ref", "server", "theirs"),
    [
        ("https://other.example.org/question/484", SERVER, "https://other.example.org"),
        ("http://massive.metabaseapp.com/question/484", SERVER, "http://massive.metabaseapp.com"),
        (
            "https://massive.metabaseapp.com:8443/question/484",
            SERVER,
            "https://massive.metabaseapp.com:8443",
        ),
        ("http://127.0.0.1:8124/question/484", "http://127.0.0.1:8123", "http://127.0.0.1:8124"),
    ],
)
def test_a_url_of_another_server_is_refused(ref: str, server: str, theirs: str) -> None:
    for read, url in ((card_id, ref), (dashboard_id, ref.replace("question", "dashboard"))):
        with pytest.raises(BadCardRef) as info:
            read(url, server=server)
        message = info.value.message
        assert theirs in message
        assert server.rstrip("/") in message
        assert [s.step for s in info.value.next_steps] == [Step.CONNECT_SERVER]
        assert info.value.next_steps[0].names == (theirs,)
        assert f"Client(url='{theirs}')" in str(info.value)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("HTTPS://Metabase.Example.org:443/x/y?z", "https://metabase.example.org"),
        ("http://h:80", "http://h"),
        ("http://h:8080/", "http://h:8080"),
        ("https://h:80/", "https://h:80"),
        ("http://[::1]:3000/question/1", "http://[::1]:3000"),
    ],
)
def test_url_origin(url: str, origin: str) -> None:
    assert url_origin(url) == origin


@pytest.mark.parametrize("url", ["/question/1", "h:99999", "https://h:99999/x", "484"])
def test_url_origin_rejects_what_is_not_an_absolute_url(url: str) -> None:
    with pytest.raises(BadCardRef):
        url_origin(url)


@pytest.mark.parametrize(
    "ref",
    ["https://x.example.com/question/0", "/question/0-zero", "https://x.example.com/dashboard/0"],
)
def test_id_zero_in_a_url_is_not_an_id(ref: str) -> None:
    read = dashboard_id if "dashboard" in ref else card_id
    with pytest.raises(BadCardRef):
        read(ref)


def test_the_wrong_kind_of_url_names_the_id_it_holds() -> None:
    with pytest.raises(BadCardRef) as info:
        card_id("https://x.example.com/dashboard/12-overview")
    assert info.value.next_steps[0].ref == 12
    with pytest.raises(BadCardRef) as info:
        dashboard_id("https://x.example.com/question/484-daily")
    assert info.value.next_steps[0].ref == 484
