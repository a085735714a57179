"""Tab completion through IPython's own completer API, in a real shell, against the sandbox.

``ip.Completer.completions(text, offset)`` is what Jupyter (ipykernel) and the terminal
call; each completion replaces ``text[start:end]``. The card list is counted on the
sandbox: one ``GET /api/card`` per logged-in client, whatever the number of Tabs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

from massive_magic.magics import MassiveMagics
from massive_magic.sandbox import demo
from massive_magic.settings import ENV_PASSWORD

CARD_LIST = "/api/card"
ClientFactory = Callable[..., Any]


def magics_of(ip: InteractiveShell) -> MassiveMagics:
    found = ip.magics_manager.registry["MassiveMagics"]
    assert isinstance(found, MassiveMagics)
    return found


def login(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    ip.run_line_magic("massive_login", f"--url {srv.url} --user {srv.username}")
    srv.reset_log()


def complete(ip: InteractiveShell, text: str, offset: int | None = None) -> list[str]:
    """The texts the completions would leave in the cell (whole, with each applied)."""
    at = len(text) if offset is None else offset
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, at))
    return [text[: c.start] + c.text + text[c.end :] for c in found]


def ours(ip: InteractiveShell, text: str, offset: int | None = None) -> list[str]:
    """Only the massive_magic completions (the text each one inserts)."""
    at = len(text) if offset is None else offset
    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(text, at) if c._origin == "massive_magic"]


@pytest.fixture
def logged_in(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    login(ip, srv, monkeypatch)
    return ip


# -- card references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%massive_card 48", "%massive_card 484-daily-earnings-by-app"),
        ("%massive_card 484-DA", "%massive_card 484-daily-earnings-by-app"),
        ("%%massive_card 512", "%%massive_card 512-sequence"),
        ("%massive_info 49", "%massive_info 497-earnings-by-country-filtered"),
        (
            "%massive_card -o df --limit 5 48",
            "%massive_card -o df --limit 5 484-daily-earnings-by-app",
        ),
        ("  %massive_card 48", "  %massive_card 484-daily-earnings-by-app"),
    ],
)
def test_card_ids_by_prefix(logged_in: InteractiveShell, text: str, expected: str) -> None:
    assert complete(logged_in, text)[0] == expected


@pytest.mark.parametrize("word", ["earn", "EARN", "Earnings"])
def test_cards_by_any_word_of_the_name(logged_in: InteractiveShell, word: str) -> None:
    found = ours(logged_in, f"%massive_card {word}")
    assert found[:3] == [
        "484-daily-earnings-by-app",
        "497-earnings-by-country-filtered",
        "515-earnings-for-one-app",
    ]
    assert ours(logged_in, "%massive_info countr") == ["497-earnings-by-country-filtered"]
    assert ours(logged_in, "%%massive_card sequ") == ["512-sequence"]


def test_no_reference_completion_elsewhere(logged_in: InteractiveShell) -> None:
    assert ours(logged_in, "%massive_card 484 -o d") == []  # the reference is there already
    assert ours(logged_in, "%massive_card --limit 4") == []  # an option's value
    assert ours(logged_in, "%massive_login 4") == []
    assert ours(logged_in, "x = 48") == []


def test_the_card_list_is_read_once(logged_in: InteractiveShell, srv: Any) -> None:
    for text in ["%massive_card 4", "%massive_card 48", "%massive_card earn", "%massive_info 5"]:
        for _ in range(3):
            assert ours(logged_in, text)
    assert ours(logged_in, "%%massive_card 497\ncou") == ["country = "]
    assert srv.count("GET", CARD_LIST) == 1
    assert srv.count("GET", "/api/card/*") == 0  # the list carries the declarations
    assert srv.count("POST") == 0


def test_a_new_login_reads_the_list_anew(
    logged_in: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ours(logged_in, "%massive_card 48")
    login(logged_in, srv, monkeypatch)
    assert ours(logged_in, "%massive_card 48")
    assert ours(logged_in, "%massive_card 49")
    assert srv.count("GET", CARD_LIST) == 1


# -- parameters in a cell body -------------------------------------------------------------


def test_parameter_names_in_the_body(logged_in: InteractiveShell) -> None:
    cell = f"%%massive_card {demo.EARNINGS_FILTERED}\n"
    assert complete(logged_in, cell + "cou") == [cell + "country = "]
    assert ours(logged_in, cell) == ["date = ", "country = ", "platform = ", "min_earnings = "]
    # a display-name word, and names given on other lines are left out
    assert ours(logged_in, cell + "earn") == ["min_earnings = "]
    assert ours(logged_in, cell + "date = past30days\n") == [
        "country = ",
        "platform = ",
        "min_earnings = ",
    ]
    # the cursor in the middle of the cell, as in Jupyter
    body = cell + "cou\nplatform = Android"
    assert ours(logged_in, body, len(cell) + 3) == ["country = "]
    # a URL or an id-slug on the magic line names the card too
    assert ours(logged_in, "%%massive_card 497-x -o df\nmin") == ["min_earnings = "]


def test_listed_values_after_the_name(logged_in: InteractiveShell) -> None:
    cell = f"%%massive_card {demo.EARNINGS_FILTERED}\n"
    assert complete(logged_in, cell + "country = G") == [cell + "country = GB"]
    assert ours(logged_in, cell + "Country = ") == list(demo.COUNTRIES)
    assert complete(logged_in, cell + 'country = ["DE", "G') == [cell + 'country = ["DE", "GB"']
    app = f"%%massive_card {demo.REQUIRED_PARAM}\napp = "
    assert complete(logged_in, app + "Tr") == [app + "TrailMap Pro"]
    assert complete(logged_in, app + "Lumen W") == [app + "Lumen Weather"]  # spaces kept
    assert complete(logged_in, app + "weath") == [app + "Lumen Weather"]  # a word of it
    assert ours(logged_in, app + "x") == []
    assert ours(logged_in, cell + "platform = ") == []  # no listed values: nothing to offer
    assert ours(logged_in, cell + "nope = ") == []


def test_declarations_of_a_card_not_in_the_list(logged_in: InteractiveShell, srv: Any) -> None:
    """A card the list lacks (a list not loaded yet): its own metadata, read once."""
    cell = f"%%massive_card {demo.SEQUENCE}\n"
    assert ours(logged_in, cell + "r") == ["rows = "]
    assert ours(logged_in, cell + "rows = ") == ["10"]  # the default
    assert ours(logged_in, cell + "R") == ["rows = "]
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1
    assert srv.count("GET", CARD_LIST) == 0


# -- dashboards -------------------------------------------------------------------------------


DASHBOARD_LIST = "/api/dashboard/"


def test_dashboards_from_metabases_list(logged_in: InteractiveShell, srv: Any) -> None:
    """``%massive_dashboard `` + Tab offers the dashboards of ``GET /api/dashboard/``:
    one list request for the login, no dashboard read."""
    assert complete(logged_in, "%massive_dashboard ") == ["%massive_dashboard 12-partner-overview"]
    assert ours(logged_in, "%massive_dashboard 1") == ["12-partner-overview"]
    assert ours(logged_in, "%%massive_dashboard partn") == ["12-partner-overview"]
    assert ours(logged_in, "%massive_dashboard 9") == []
    assert srv.count("GET", DASHBOARD_LIST) == 1
    assert srv.count("GET", f"/api/dashboard/{demo.OVERVIEW_DASHBOARD}") == 0
    assert [r.query for r in srv.requests("GET", DASHBOARD_LIST)] == ["f=all"]


def test_dashboards_read_so_far_when_the_list_is_not_served(
    logged_in: InteractiveShell, srv: Any
) -> None:
    # Newer Metabase may drop GET /api/dashboard/ (404): completion offers the
    # dashboards read so far, and asks for the list once.
    srv.faults.fail_next(n=5, status=404, path=DASHBOARD_LIST)
    assert ours(logged_in, "%massive_dashboard ") == []
    with pytest.warns(Warning):
        logged_in.run_line_magic("massive_dashboard", f"{demo.OVERVIEW_DASHBOARD} -q")
    assert complete(logged_in, "%massive_dashboard 1") == ["%massive_dashboard 12-partner-overview"]
    assert ours(logged_in, "%%massive_dashboard partn") == ["12-partner-overview"]
    assert ours(logged_in, "%massive_dashboard overv") == ["12-partner-overview"]
    assert ours(logged_in, "%massive_dashboard 9") == []
    assert srv.count("GET", DASHBOARD_LIST) == 1


# -- never in the way ----------------------------------------------------------------------


def test_not_logged_in_completes_nothing(ip: InteractiveShell, srv: Any) -> None:
    srv.reset_log()
    assert ours(ip, "%massive_card 48") == []
    assert ours(ip, "%%massive_card 497\ncou") == []
    assert ours(ip, "%massive_dashboard 1") == []
    assert srv.log == []


def test_a_failing_list_completes_nothing_and_raises_nothing(
    logged_in: InteractiveShell, srv: Any
) -> None:
    srv.faults.fail_next(n=5, status=500, path=CARD_LIST)
    assert ours(logged_in, "%massive_card 48") == []
    assert ours(logged_in, "%massive_card 49") == []  # not asked again for this login
    assert srv.count("GET", CARD_LIST) == 1


def test_a_slow_list_does_not_hold_the_tab(
    logged_in: InteractiveShell, srv: Any, make_client: ClientFactory
) -> None:
    """A Tab waits at most the connect timeout; the list serves a later Tab."""
    client = make_client(timeout=(0.05, 30))
    magics_of(logged_in).client = client
    srv.faults.delay_next(seconds=1, path=CARD_LIST)
    assert ours(logged_in, "%massive_card 48") == []  # the answer is not there yet
    found: list[str] = []
    for _ in range(400):  # until the held answer arrives (no clock is asserted)
        found = ours(logged_in, "%massive_card 48")
        if found:
            break
    assert found == ["484-daily-earnings-by-app"]
    assert srv.count("GET", CARD_LIST) == 1


def test_unloading_removes_the_matcher(logged_in: InteractiveShell) -> None:
    completer = magics_of(logged_in).completer
    assert completer.matcher in logged_in.Completer.custom_matchers
    logged_in.run_line_magic("unload_ext", "massive_magic")
    try:
        assert completer.matcher not in logged_in.Completer.custom_matchers
    finally:
        logged_in.run_line_magic("load_ext", "massive_magic")
