"""Snapshots wired into the Client: record over real HTTP, replay with the server stopped.

A replay must send nothing at all: every replay here runs against a sandbox of its
own that was stopped after recording (a request would fail), with no credentials,
and its request log is checked to be unchanged. Frames must equal the live ones.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from pandas.testing import assert_frame_equal

from massive_magic import Client, ConfigError, MassiveWarning, SnapshotError, SnapshotWarning, cli
from massive_magic import sandbox as sandbox_module
from massive_magic.errors import Step
from massive_magic.sandbox import Sandbox, demo
from massive_magic.settings import (
    ENV_SNAPSHOT_MAX_AGE,
    ENV_SNAPSHOT_MODE,
    ENV_SNAPSHOTS,
    Settings,
)
from massive_magic.snapshot_reads import ReplayLogin
from massive_magic.snapshots import SnapshotStore

MARCH = (dt.date(2024, 3, 1), dt.date(2024, 3, 31))
FILTERS = {"Date": MARCH, "Country": ["DE", "GB"], "min_earnings": 0.5}


class Private:
    """A sandbox of this test's own, so that it can be stopped before the replay."""

    def __init__(self) -> None:
        self.server: Sandbox = sandbox_module.start(port=0)
        self.url = self.server.url
        self.stopped = False

    def stop(self) -> int:
        """Stop serving; the number of requests it answered (unchanged after a replay)."""
        if not self.stopped:
            self.server.stop()
            self.stopped = True
        return len(self.server.log)


@pytest.fixture
def private() -> Iterator[Private]:
    made = Private()
    yield made
    made.stop()


@pytest.fixture
def snaps(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


def recorder(server: Sandbox, directory: Path, tmp_path: Path, **options: Any) -> Client:
    options.setdefault("snapshot_mode", "record")
    return Client(
        server.url,
        server.username,
        server.password,
        cache_dir=tmp_path / "cache-rec",
        progress=False,
        snapshots=directory,
        **options,
    )


def replayer(url: str, directory: Path, tmp_path: Path, **options: Any) -> Client:
    """No user, no password, no key: a colleague without an account."""
    options.setdefault("snapshot_mode", "replay")
    return Client(
        url, cache_dir=tmp_path / "cache-rep", progress=False, snapshots=directory, **options
    )


def assert_replayed(replayed: pd.DataFrame, live: pd.DataFrame) -> None:
    assert_frame_equal(replayed, live, check_exact=True)
    assert list(replayed.dtypes) == list(live.dtypes)
    assert replayed.attrs["display_names"] == live.attrs["display_names"]
    assert replayed.attrs["metabase_types"] == live.attrs["metabase_types"]
    got, want = dict(replayed.attrs["massive"]), dict(live.attrs["massive"])
    assert got.pop("source") == "snapshot" and want.pop("source") != "snapshot"
    assert Path(got.pop("snapshot")).is_file()
    assert got == want  # fetched_at: when the data was read from Metabase


# -- record, stop the server, replay: equal, zero requests ---------------------------------------

READS: dict[str, Callable[[Client], Any]] = {
    "all types": lambda c: c.card(demo.ALL_TYPES),
    "parameters": lambda c: c.card(demo.EARNINGS_FILTERED, FILTERS),
    "limit": lambda c: c.card(demo.DAILY_EARNINGS, limit=25),
    "by URL, parameters in another order": lambda c: c.card(
        f"{c.url}/question/{demo.EARNINGS_FILTERED}-x",
        {"min_earnings": 0.5, "Country": ["DE", "GB"], "Date": MARCH},
    ),
    "required parameter": lambda c: c.card(demo.SEQUENCE, {"rows": 3}),
}


@pytest.mark.parametrize("case", list(READS))
def test_record_then_replay_offline(
    case: str, private: Private, snaps: Path, tmp_path: Path
) -> None:
    read = READS[case]
    with recorder(private.server, snaps, tmp_path) as live_client:
        live = read(live_client)
    answered = private.stop()
    with replayer(private.url, snaps, tmp_path) as offline:
        assert isinstance(offline.login(), ReplayLogin)  # nothing sent, no password asked
        replayed = read(offline)
        again = read(offline)
        offline.logout()
    assert private.stop() == answered  # not one request
    assert_replayed(replayed, live)
    assert_frame_equal(again, replayed, check_exact=True)


def test_dashboard_with_filters_replays_offline(
    private: Private, snaps: Path, tmp_path: Path
) -> None:
    filters = {"Date": MARCH, "Country": ["DE"]}
    with (
        recorder(private.server, snaps, tmp_path) as live_client,
        pytest.warns(MassiveWarning, match="Payout reconciliation"),
    ):
        live = live_client.dashboard(demo.OVERVIEW_DASHBOARD, filters)
    answered = private.stop()
    with (
        replayer(private.url, snaps, tmp_path) as offline,
        pytest.warns(MassiveWarning, match="Payout reconciliation"),
    ):
        replayed = offline.dashboard(demo.OVERVIEW_DASHBOARD, filters)
    assert private.stop() == answered
    assert list(replayed) == list(live) and len(live) == 2
    for name in live:
        assert_replayed(replayed[name], live[name])
    assert (replayed.name, replayed.dashboard_id) == (live.name, live.dashboard_id)
    # the failing card failed live, so nothing was recorded: in replay it says so
    (error,) = replayed.errors.values()
    assert isinstance(error, SnapshotError) and error.reason == "missing"
    assert replayed.errors.keys() == live.errors.keys()
    # other filters were never recorded: each card says how its nearest snapshot differs
    with replayer(private.url, snaps, tmp_path) as offline, pytest.warns(MassiveWarning):
        other = offline.dashboard(demo.OVERVIEW_DASHBOARD, {"Date": MARCH, "Country": ["GB"]})
    assert len(other) == 0  # a dashboard's filters go to all its cards: none matches
    assert "asked country=['GB']" in str(other.errors["Earnings by country (filtered)"])


@pytest.mark.slow
def test_the_million_row_card_replays_offline(
    private: Private, snaps: Path, tmp_path: Path
) -> None:
    with recorder(private.server, snaps, tmp_path) as live_client:
        live = live_client.card(demo.LARGE)
    answered = private.stop()
    with replayer(private.url, snaps, tmp_path) as offline:
        replayed = offline.card(demo.LARGE)
    assert private.stop() == answered
    assert len(replayed) == demo.LARGE_ROWS
    assert_replayed(replayed, live)


# -- modes ---------------------------------------------------------------------------------------


def test_auto_records_once_then_replays(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with recorder(srv, snaps, tmp_path, snapshot_mode="auto") as mb:
        first = mb.card(demo.EARNINGS_FILTERED, FILTERS)
        queries = srv.count("POST", "/api/card/*")
        assert queries >= 1
        srv.reset_log()
        second = mb.card(demo.EARNINGS_FILTERED, FILTERS)
        assert srv.log == []  # declarations and frame both from the directory
    assert second.attrs["massive"]["source"] == "snapshot"
    assert_replayed(second, first)
    # a new Client in auto: the declarations come from the directory too; with credentials,
    # one GET /api/card/:id compares the card's edit time, and nothing else is sent
    srv.reset_log()
    with recorder(srv, snaps, tmp_path, snapshot_mode="auto") as mb:
        mb.card(demo.EARNINGS_FILTERED, FILTERS)
        mb.card(demo.EARNINGS_FILTERED, FILTERS)
    assert [(r.method, r.path) for r in srv.log if r.path.startswith("/api/card")] == [
        ("GET", f"/api/card/{demo.EARNINGS_FILTERED}")
    ]


def test_refresh_reads_live_and_records_again(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    for mode in ("record", "auto"):
        with recorder(srv, snaps, tmp_path, snapshot_mode=mode) as mb:
            mb.card(demo.ALL_TYPES)
            srv.reset_log()
            fresh = mb.card(demo.ALL_TYPES, refresh=True)
        assert fresh.attrs["massive"]["source"] != "snapshot"
        assert srv.count("POST", f"/api/card/{demo.ALL_TYPES}/query*") == 1
        (info,) = SnapshotStore(snaps).list()
        assert info.recorded_at == dt.datetime.fromisoformat(fresh.attrs["massive"]["fetched_at"])
    srv.reset_log()
    with replayer(srv.url, snaps, tmp_path) as offline, pytest.raises(SnapshotError) as caught:
        offline.card(demo.ALL_TYPES, refresh=True)
    error = caught.value
    assert error.reason == "replay" and srv.log == []
    assert "needs the Metabase server" in error.message and str(snaps) in error.message
    assert [s.step for s in error.next_steps] == [Step.LEAVE_REPLAY]
    assert "snapshot_mode='auto'" in str(error)


def test_replay_refuses_what_only_the_server_has(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with replayer(srv.url, snaps, tmp_path) as offline:
        for call in (offline.cards, lambda: offline.card_info(demo.ALL_TYPES)):
            with pytest.raises(SnapshotError) as caught:
                call()
            assert caught.value.reason == "replay"
        info = offline.login()
    assert srv.log == []
    assert isinstance(info, ReplayLogin)
    assert str(info) == f"Replaying snapshots of {srv.url} from {snaps}: no login, nothing is sent."


# -- what does not match is an error that says why -----------------------------------------------


@pytest.fixture
def recorded(private: Private, snaps: Path, tmp_path: Path) -> str:
    """Card 497 (country US) and card 501 recorded; the server stopped. Its URL."""
    with recorder(private.server, snaps, tmp_path) as mb:
        mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
        mb.card(demo.ALL_TYPES)
    private.stop()
    return private.url


MISSES: dict[str, tuple[Callable[[Client], Any], str]] = {
    "parameters": (
        lambda c: c.card(demo.EARNINGS_FILTERED, {"country": ["DE"]}),
        "recorded with country=['US'], asked country=['DE']",
    ),
    "no parameters": (
        lambda c: c.card(demo.EARNINGS_FILTERED),
        "recorded with country=['US'], asked country unset",
    ),
    "limit": (
        lambda c: c.card(demo.ALL_TYPES, limit=3),
        "recorded with limit=None, asked limit=3",
    ),
    "card": (lambda c: c.card(demo.DAILY_EARNINGS), "it holds no snapshot of this card at all"),
    "declarations": (
        lambda c: c.card(demo.DAILY_EARNINGS, {"country": ["US"]}),
        "its parameter declarations are missing",
    ),
    "dashboard": (
        lambda c: c.dashboard(demo.OVERVIEW_DASHBOARD),
        f"No snapshot of dashboard {demo.OVERVIEW_DASHBOARD}",
    ),
}


@pytest.mark.parametrize("case", list(MISSES))
def test_a_miss_in_replay_names_card_parameters_directory_and_difference(
    case: str, recorded: str, snaps: Path, tmp_path: Path
) -> None:
    read, difference = MISSES[case]
    with replayer(recorded, snaps, tmp_path) as offline, pytest.raises(SnapshotError) as caught:
        read(offline)
    error = caught.value
    assert error.reason == "missing"
    assert difference in error.message
    assert str(snaps) in error.message
    if case != "dashboard":
        assert "card " in error.message
    if case == "parameters":
        assert "with country=['DE']" in error.message  # what was asked for
    assert [s.step for s in error.next_steps] == [Step.RECORD_SNAPSHOT]
    assert str(error).endswith("Record it with snapshot_mode='record' (or 'auto') while online.")


def test_another_server_url_is_a_miss(recorded: str, snaps: Path, tmp_path: Path) -> None:
    with (
        replayer("http://127.0.0.1:9", snaps, tmp_path) as offline,
        pytest.raises(SnapshotError) as caught,
    ):
        offline.card(demo.ALL_TYPES)
    assert f"recorded on another server URL ({recorded})" in caught.value.message


# -- freshness -----------------------------------------------------------------------------------


def backdate(directory: Path, days: float, *, to: dt.datetime | None = None) -> None:
    """Record every snapshot in ``directory`` again as if read ``days`` ago (or at ``to``)."""
    store = SnapshotStore(directory)
    for info in store.list():
        frame = store.load(info.key)
        massive = frame.attrs["massive"]
        moment = to or dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        massive["fetched_at"] = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
        massive["source"] = "api"
        massive.pop("snapshot")
        store.save(info.key, frame)


def test_max_age(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        live = mb.card(demo.ALL_TYPES)
    backdate(snaps, 10)
    srv.reset_log()
    with (
        replayer(srv.url, snaps, tmp_path, snapshot_max_age="7d") as offline,
        pytest.raises(SnapshotError) as caught,
    ):
        offline.card(demo.ALL_TYPES)
    error = caught.value
    assert error.reason == "expired"
    assert "10 days" in error.message and "older than the 7 days allowed" in error.message
    assert [s.step for s in error.next_steps] == [Step.RECORD_SNAPSHOT, Step.ALLOW_OLDER]
    with replayer(srv.url, snaps, tmp_path, snapshot_max_age=dt.timedelta(days=30)) as offline:
        assert_frame_equal(offline.card(demo.ALL_TYPES), live, check_exact=True)
    assert srv.log == []
    # auto: a snapshot older than max_age is read live and recorded again
    with recorder(srv, snaps, tmp_path, snapshot_mode="auto", snapshot_max_age="7d") as mb:
        fresh = mb.card(demo.ALL_TYPES)
    assert fresh.attrs["massive"]["source"] != "snapshot"
    assert srv.count("POST", f"/api/card/{demo.ALL_TYPES}/query*") == 1
    (info,) = SnapshotStore(snaps).list()
    assert info.age < dt.timedelta(hours=1)


def test_a_card_edited_after_its_snapshot_warns_in_auto(
    srv: Sandbox, snaps: Path, tmp_path: Path
) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        live = mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    # recorded before the sandbox card's last edit (2024-04-30T14:02:11Z)
    backdate(snaps, 0, to=dt.datetime(2024, 4, 1, tzinfo=dt.timezone.utc))
    srv.reset_log()
    with recorder(srv, snaps, tmp_path, snapshot_mode="auto") as mb:
        with pytest.warns(SnapshotWarning) as caught:
            replayed = mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
        (warning,) = caught
        assert (
            "was edited in Metabase on 2024-04-30T14:02:11Z, after its snapshot was recorded "
            "on 2024-04-01T00:00:00Z" in str(warning.message)
        )
        assert warning.filename == __file__  # attributed to the caller's line
        mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})  # checked once per card and Client
    assert_frame_equal(replayed, live, check_exact=True)
    assert [(r.method, r.path) for r in srv.log if r.path.startswith("/api/card")] == [
        ("GET", f"/api/card/{demo.EARNINGS_FILTERED}")
    ]
    # without credentials there is nobody to ask: no request, no warning
    srv.reset_log()
    with replayer(srv.url, snaps, tmp_path, snapshot_mode="auto") as offline:
        offline.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    assert srv.log == []


def test_relative_dates_in_a_replayed_read_warn(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        mb.card(demo.EARNINGS_FILTERED, {"Date": "past30days"})
        mb.card(demo.EARNINGS_FILTERED, {"Date": MARCH})
    with replayer(srv.url, snaps, tmp_path) as offline:
        with pytest.warns(SnapshotWarning, match=r"relative dates \(date='past30days'\) were "):
            offline.card(demo.EARNINGS_FILTERED, {"Date": "past30days"})
        offline.card(demo.EARNINGS_FILTERED, {"Date": MARCH})  # absolute dates: no warning


# -- integrity -----------------------------------------------------------------------------------


def test_a_damaged_snapshot_or_metadata_file_is_an_error(
    srv: Sandbox, snaps: Path, tmp_path: Path
) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    (info,) = SnapshotStore(snaps).list()
    data = bytearray(info.parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.parquet.write_bytes(bytes(data))
    for mode in ("replay", "auto"):  # auto does not silently read live over it
        with (
            replayer(srv.url, snaps, tmp_path, snapshot_mode=mode) as offline,
            pytest.raises(SnapshotError) as caught,
        ):
            offline.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
        assert caught.value.reason == "corrupt" and "damaged" in caught.value.message
        assert caught.value.next_steps[0].step is Step.RECORD_SNAPSHOT
    with recorder(srv, snaps, tmp_path) as mb:  # recording again repairs it
        mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    (declarations,) = (snaps / "metadata").glob(f"card-{demo.EARNINGS_FILTERED}-*.json")
    declarations.write_text(declarations.read_text().replace('"Country"', '"Land"'))
    with replayer(srv.url, snaps, tmp_path) as offline, pytest.raises(SnapshotError) as caught:
        offline.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    assert caught.value.reason == "corrupt" and str(declarations) in caught.value.message
    with recorder(srv, snaps, tmp_path) as mb:
        live = mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    with replayer(srv.url, snaps, tmp_path) as offline:
        assert_replayed(offline.card(demo.EARNINGS_FILTERED, {"country": ["US"]}), live)


def test_no_secret_is_written_anywhere_in_the_directory(
    srv: Sandbox, snaps: Path, tmp_path: Path
) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        mb.card(demo.EARNINGS_FILTERED, FILTERS)
        mb.card(demo.ALL_TYPES)
        with pytest.warns(MassiveWarning):
            mb.dashboard(demo.OVERVIEW_DASHBOARD, {"Country": ["DE"]})
    with Client(
        srv.url,
        api_key=srv.api_key,
        cache_dir=tmp_path / "key",
        progress=False,
        snapshots=snaps,
        snapshot_mode="record",
    ) as by_key:
        by_key.card(demo.SEQUENCE, {"rows": 4})
    tokens = {
        value
        for request in srv.log
        for name, value in request.headers.items()
        if name.lower() in ("x-metabase-session", "x-api-key")
    }
    assert len(tokens) >= 2
    files = [p for p in snaps.rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} == {"snapshots", "metadata"}
    assert len(list((snaps / "metadata").iterdir())) == 4  # cards 497, 501, 512; dashboard 12
    for path in files:
        data = path.read_bytes()
        for secret in (srv.password, srv.api_key, srv.username, *tokens):
            assert secret.encode() not in data, (path.name, "a secret")
    for path in (snaps / "metadata").iterdir():  # only what a replay needs: no SQL
        assert b"SELECT" not in path.read_bytes() and b"dataset_query" not in path.read_bytes()


# -- settings: argument > environment > default ----------------------------------------------------


def test_settings_from_arguments_and_environment(
    snaps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9"
    assert Settings.resolve(url).snapshot_mode == "off"
    assert Settings.resolve(url, snapshots=snaps).snapshot_mode == "auto"
    assert Settings.resolve(url, snapshots=str(snaps)).snapshots == snaps
    monkeypatch.setenv(ENV_SNAPSHOTS, str(snaps))
    monkeypatch.setenv(ENV_SNAPSHOT_MODE, "REPLAY")
    monkeypatch.setenv(ENV_SNAPSHOT_MAX_AGE, "12h")
    with Client(url, cache_dir=tmp_path) as mb:
        s = mb.settings
        assert (s.snapshots, s.snapshot_mode, s.snapshot_max_age) == (
            snaps,
            "replay",
            dt.timedelta(hours=12),
        )
        assert isinstance(mb.login(), ReplayLogin)
        assert repr(mb) == (
            f"Client(url={url!r}, user=None, snapshots={str(snaps)!r}, snapshot_mode='replay')"
        )
    other = tmp_path / "other"
    s = Settings.resolve(url, snapshots=other, snapshot_mode="record", snapshot_max_age="1d")
    assert (s.snapshots, s.snapshot_mode, s.snapshot_max_age) == (
        other,
        "record",
        dt.timedelta(days=1),
    )
    monkeypatch.setenv(ENV_SNAPSHOT_MODE, "replya")
    with pytest.raises(ConfigError, match=f"{ENV_SNAPSHOT_MODE}='replya': Snapshot mode must"):
        Settings.resolve(url)
    monkeypatch.delenv(ENV_SNAPSHOTS)
    monkeypatch.setenv(ENV_SNAPSHOT_MODE, "replay")
    with pytest.raises(ConfigError) as caught:
        Client(url)
    assert "needs a snapshot directory" in caught.value.message
    assert ENV_SNAPSHOTS in str(caught.value)
    monkeypatch.setenv(ENV_SNAPSHOT_MODE, "off")
    monkeypatch.setenv(ENV_SNAPSHOT_MAX_AGE, "a week")
    with pytest.raises(ConfigError, match=ENV_SNAPSHOT_MAX_AGE):
        Settings.resolve(url)


def test_use_snapshots_changes_a_client_in_place(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with recorder(srv, snaps, tmp_path, snapshot_mode="off") as mb:
        mb.card(demo.ALL_TYPES)
        assert not snaps.exists()
        mb.use_snapshots(snaps, "record")
        live = mb.card(demo.ALL_TYPES)
        mb.use_snapshots(snaps)  # a directory alone: auto
        assert mb.settings.snapshot_mode == "auto"
        srv.reset_log()
        mb.use_snapshots(snaps, "replay")
        assert_replayed(mb.card(demo.ALL_TYPES), live)
        mb.use_snapshots(None)
        assert mb.settings.snapshot_mode == "off"
    assert srv.log == []
    with pytest.raises(ConfigError):
        Client(srv.url, snapshot_mode="replay")


def test_manifests_list_what_the_wiring_recorded(srv: Sandbox, snaps: Path, tmp_path: Path) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        live = mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]}, limit=7)
    (info,) = SnapshotStore(snaps).list()
    assert (info.card_id, info.rows, info.limit, info.name) == (
        demo.EARNINGS_FILTERED,
        7,
        7,
        "Earnings by country (filtered)",
    )
    assert info.parameters == live.attrs["massive"]["parameters"]
    body = json.loads(info.path.read_text())
    assert body["key"]["url"] == srv.url


# -- the magics ----------------------------------------------------------------------------------


def cell(ip: InteractiveShell, source: str) -> ExecutionResult:
    return ip.run_cell(source, store_history=True)


def usage(result: ExecutionResult) -> str:
    assert not result.success
    assert type(result.error_in_exec) is UsageError, repr(result.error_in_exec)
    return str(result.error_in_exec)


def magics_of(ip: InteractiveShell) -> Any:
    return ip.magics_manager.registry["MassiveMagics"]


def test_magics_record_then_replay_without_the_sandbox(
    ip: InteractiveShell, snaps: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["folder"] = str(snaps)
    assert cell(ip, "%massive_snapshots record {folder}").success
    assert f"Snapshots: record in {snaps}. No snapshots there yet." in capsys.readouterr().out
    assert cell(ip, "%massive_login --sandbox").success
    assert cell(ip, "%massive_card 484 -o daily").success
    assert cell(ip, '%%massive_card 497 -o europe\nCountry = ["DE"]\nDate = 2024-03').success
    with pytest.warns(MassiveWarning, match="Payout reconciliation"):
        assert cell(ip, "%massive_dashboard 12 -o overview").success
    out = capsys.readouterr().out
    assert "daily: 14,640 rows x 7 columns from 'Daily earnings by app' in " in out
    assert "snapshot" not in out  # read live
    sandbox = magics_of(ip).sandbox
    assert cell(ip, "%unload_ext massive_magic\n%load_ext massive_magic").success
    assert magics_of(ip).sandbox is None  # the sandbox is stopped
    answered = len(sandbox.log)

    # a fresh start, in replay: no sandbox is started, no login happens
    assert cell(ip, f"%massive_snapshots replay {snaps}").success
    assert cell(ip, "%massive_login --sandbox").success
    out = capsys.readouterr().out
    assert f"Replaying snapshots of sandbox://demo from {snaps}: no login, nothing is sent." in out
    assert magics_of(ip).sandbox is None
    live = {name: ip.user_ns[name] for name in ("daily", "europe", "overview")}
    assert cell(ip, "%massive_card 484 -o daily").success
    assert cell(ip, '%%massive_card 497 -o europe\nDate = 2024-03\nCountry = ["DE"]').success
    with pytest.warns(MassiveWarning, match="Payout reconciliation"):
        assert cell(ip, "%massive_dashboard 12 -o overview").success
    out = capsys.readouterr().out
    today = dt.datetime.now(dt.timezone.utc)
    assert "daily: 14,640 rows x 7 columns from 'Daily earnings by app' in " in out
    assert f"s, from a snapshot of {today:%Y-%m-%d}, under a minute old" in out or (
        ", from a snapshot of " in out and " old" in out
    )
    assert ", from snapshots, the oldest of " in out  # the dashboard's summary
    assert len(sandbox.log) == answered
    assert_replayed(ip.user_ns["daily"], live["daily"])
    assert_replayed(ip.user_ns["europe"], live["europe"])
    for name, frame in live["overview"].items():
        assert_replayed(ip.user_ns["overview"][name], frame)

    # what only the server can do says so, in the notebook's words
    error = usage(cell(ip, "%massive_card 484 --refresh"))
    assert "needs the Metabase server" in error
    assert error.endswith("Run %massive_snapshots auto (or off) to read from Metabase.")
    error = usage(cell(ip, "%massive_card 484 --limit 5"))
    assert "recorded with limit=None, asked limit=5" in error
    assert error.endswith("Record it with %massive_snapshots record (or auto) while online.")

    # the status line; leaving replay ends its login
    assert cell(ip, "%massive_snapshots").success
    out = capsys.readouterr().out
    assert f"Snapshots: replay in {snaps}. 4 snapshots (" in out
    assert "the oldest of " in out and "the newest of " in out
    assert cell(ip, "%massive_snapshots auto").success
    out = capsys.readouterr().out
    assert out.startswith(f"Snapshots: auto in {snaps}. 4 snapshots")
    assert "The replay's login ended: run %massive_login to read from Metabase." in out
    assert magics_of(ip).client is None
    assert cell(ip, "%massive_snapshots off").success
    assert f"Snapshots are off (directory {snaps})" in capsys.readouterr().out


def test_replay_from_the_environment_needs_no_login_cell(
    ip: InteractiveShell,
    srv: Sandbox,
    snaps: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with recorder(srv, snaps, tmp_path) as mb:
        live = mb.card(demo.ALL_TYPES)
    srv.reset_log()
    monkeypatch.setenv("MASSIVE_METABASE_URL", srv.url)
    monkeypatch.setenv(ENV_SNAPSHOTS, str(snaps))
    monkeypatch.setenv(ENV_SNAPSHOT_MODE, "replay")
    assert cell(ip, "%massive_card 501 -o df").success
    assert ", from a snapshot of " in capsys.readouterr().out
    assert_replayed(ip.user_ns["df"], live)
    assert cell(ip, f"%massive_login --user {srv.username}").success  # no password asked
    assert "Replaying snapshots of " in capsys.readouterr().out
    assert srv.log == []
    # the magic wins over the environment; %config works as well
    assert cell(ip, "%massive_snapshots off").success
    assert magics_of(ip).client is None  # the replay's client never logged in
    assert cell(ip, '%config MassiveMagics.snapshot_mode = "replay"').success
    assert cell(ip, "%massive_card 501 -o df").success
    assert srv.log == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("replay a b", "Give a mode (record, replay, auto, off) and then a directory"),
        ("replay --max-age soon", "max_age must be a timedelta or a duration"),
        ("replay", "Snapshot mode 'replay' needs a snapshot directory"),
    ],
)
def test_snapshot_magic_refuses_what_it_cannot_do(
    ip: InteractiveShell, line: str, expected: str
) -> None:
    assert expected in usage(cell(ip, f"%massive_snapshots {line}"))
    magics = magics_of(ip)
    assert (magics.snapshots, magics.snapshot_mode, magics.snapshot_max_age) == (None, None, None)


def test_snapshot_magic_max_age(
    ip: InteractiveShell, snaps: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cell(ip, f"%massive_snapshots replay {snaps} --max-age 7d").success
    assert f"Snapshots: replay in {snaps}, at most 7 days old." in capsys.readouterr().out
    assert magics_of(ip).snapshot_max_age == "7d"
    assert cell(ip, "%massive_snapshots --max-age none").success
    assert magics_of(ip).snapshot_max_age is None


# -- the command line ----------------------------------------------------------------------------


def test_cli_lists_what_a_directory_holds(
    srv: Sandbox,
    snaps: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["snapshots", "list", str(snaps)]) == 0
    assert capsys.readouterr().out == f"No snapshots in {snaps}.\n"
    with recorder(srv, snaps, tmp_path) as mb:
        mb.card(demo.EARNINGS_FILTERED, {"country": ["US"]}, limit=7)
        mb.card(demo.ALL_TYPES)
    monkeypatch.setenv(ENV_SNAPSHOTS, str(snaps))
    assert cli.main(["snapshots", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "card", "name", "parameters", "limit", "rows", "recorded", "(UTC)", "age", "size"
    ]  # fmt: skip
    assert lines[1].split()[:5] == ["497", "Earnings", "by", "country", "(filtered)"]
    assert lines[1].split()[5:8] == ["country=['US']", "7", "7"]  # parameters, limit, rows
    assert lines[2].split()[:4] == ["501", "All", "column", "types"]
    assert lines[3].startswith(f"2 snapshots in {snaps}, ")
    (snaps / "501-all-column-types-0000000000000000.json").write_text("{")
    assert cli.main(["snapshots", "list", str(snaps)]) == 1
    assert "damaged: 501-all-column-types-0000000000000000.json: The snapshot " in (
        capsys.readouterr().out
    )


def test_cli_list_without_a_directory_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["snapshots", "list"]) == 2  # a usage error
    err = capsys.readouterr().err
    assert err == (
        f"massive-magic: No snapshot directory to list. Set {ENV_SNAPSHOTS} (or pass --dir DIR).\n"
    )


def test_cli_refresh_of_a_missing_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["snapshots", "refresh", str(tmp_path / "nope.ipynb")]) == 2
    assert "nope.ipynb not found" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_refresh_executes_the_notebook_in_record_mode(
    srv: Sandbox,
    snaps: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with recorder(srv, snaps, tmp_path, snapshot_mode="auto") as mb:
        mb.card(demo.ALL_TYPES)  # already recorded: auto would replay it, record must not
    notebook = tmp_path / "nightly.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell("%load_ext massive_magic"),
                nbformat.v4.new_code_cell(f"%massive_login --url {srv.url} --user {srv.username}"),
                nbformat.v4.new_code_cell("%massive_card 501 -o df"),
                nbformat.v4.new_code_cell('%%massive_card 497 -o us\ncountry = ["US"]'),
            ]
        ),
        notebook,
    )
    monkeypatch.setenv("MASSIVE_METABASE_PASSWORD", srv.password)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    srv.reset_log()
    output = tmp_path / "out" / "nightly.ipynb"
    code = cli.main(
        ["snapshots", "refresh", str(notebook), "--dir", str(snaps), "--output", str(output)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 of 4 code cells ran" in out
    assert f"2 of the 2 snapshots in {snaps} were recorded by this run." in out
    assert srv.count("POST", f"/api/card/{demo.ALL_TYPES}/query*") == 1  # read live again
    assert output.is_file()
    failing = tmp_path / "failing.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), failing)
    assert cli.main(["snapshots", "refresh", str(failing), "--dir", str(snaps)]) == 1
    assert "Failed at cell 1: ZeroDivisionError" in capsys.readouterr().err


def test_the_summary_tells_a_replayed_frames_age() -> None:
    from massive_magic.magic_text import describe_dashboard, describe_frame
    from massive_magic.metadata import DashboardResult

    now = dt.datetime(2026, 11, 29, 10, tzinfo=dt.timezone.utc)

    def frame(source: str, fetched_at: str) -> pd.DataFrame:
        df = pd.DataFrame({"x": [1, 2]})
        df.attrs["massive"] = {"source": source, "fetched_at": fetched_at}
        return df

    old = frame("snapshot", "2026-11-02T08:00:00Z")
    assert describe_frame("daily", old, "Daily", 0.01, now) == (
        "daily: 2 rows x 1 columns from 'Daily' in 0.01 s, from a snapshot of 2026-11-02, "
        "27 days old"
    )
    assert describe_frame("d", frame("api", "2026-11-02T08:00:00Z"), "D", 1, now).endswith(" s")
    hours = frame("snapshot", "2026-11-29T05:00:00Z")
    assert describe_frame("d", hours, "D", 1, now).endswith("of 2026-11-29, 5 hours old")
    result = DashboardResult({"a": old, "b": hours}, {}, dashboard_id=12, name="Overview")
    assert describe_dashboard("o", result, 0.5, now) == (
        "o: 2 of 2 cards from 'Overview' in 0.50 s, from snapshots, the oldest of 2026-11-02, "
        "27 days old"
    )
    mixed = DashboardResult({"a": old, "b": frame("api", "x")}, {}, dashboard_id=1, name="M")
    assert describe_dashboard("m", mixed, 0.5, now).endswith(
        ", from snapshots (1 of 2 cards), the oldest of 2026-11-02, 27 days old"
    )
