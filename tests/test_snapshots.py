"""Snapshots: record real frames (over HTTP from the sandbox), replay them exactly, offline.

Every frame here comes from ``Client.card`` / ``Client.dashboard`` against the
sandbox; a replayed frame must equal it (values, dtypes, names, attrs), and a
snapshot that does not match exactly, is too old or is damaged is an error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from massive_magic import Client, ConfigError, MassiveWarning, SnapshotError
from massive_magic.sandbox import Sandbox, demo
from massive_magic.sandbox.catalog import Card
from massive_magic.sandbox.values import Column, Table
from massive_magic.snapshot_keys import canonical_parameters
from massive_magic.snapshots import (
    SnapshotKey,
    SnapshotMode,
    SnapshotStore,
    parse_max_age,
    parse_mode,
)


@pytest.fixture
def client(sandbox: Sandbox, cache_dir: Path) -> Iterator[Client]:
    with Client(sandbox.url, sandbox.username, sandbox.password, progress=False) as mb:
        yield mb


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snapshots")


def key_of(store: SnapshotStore, frame: pd.DataFrame) -> SnapshotKey:
    """The key built the way the wiring will: from what Client.card sends."""
    m = frame.attrs["massive"]
    target = (
        m["card_id"]
        if m["dashboard_id"] is None
        else (
            m["dashboard_id"],
            m["dashcard_id"],
            m["card_id"],
        )
    )
    return store.key(m["url"], target, m["parameters"], m["limit"])


def assert_replays(replayed: pd.DataFrame, live: pd.DataFrame, manifest: Path) -> None:
    """Equal values, dtypes, names and attrs; provenance says it came from the snapshot."""
    assert_frame_equal(replayed, live, check_exact=True)
    assert list(replayed.dtypes) == list(live.dtypes)
    assert replayed.columns.dtype == live.columns.dtype
    assert replayed.attrs["display_names"] == live.attrs["display_names"]
    assert replayed.attrs["metabase_types"] == live.attrs["metabase_types"]
    got = dict(replayed.attrs["massive"])
    assert got.pop("source") == "snapshot"
    assert got.pop("snapshot") == str(manifest)
    want = dict(live.attrs["massive"])
    want.pop("source")
    assert got == want  # fetched_at included: when the data was read from Metabase


def record_and_load(store: SnapshotStore, live: pd.DataFrame) -> pd.DataFrame:
    key = key_of(store, live)
    manifest = store.save(key, live)
    replayed = store.load(key)
    assert_replays(replayed, live, manifest)
    return replayed


# -- exact replay, every type family --------------------------------------------------------------


def test_all_types_card_replays_exactly(client: Client, store: SnapshotStore) -> None:
    live = client.card(demo.ALL_TYPES)
    replayed = record_and_load(store, live)
    # each family, by name, so a failure says which one
    for name in live.columns:
        pd.testing.assert_series_equal(replayed[name], live[name], check_exact=True)
        assert replayed[name].isna().tolist() == live[name].isna().tolist(), name
    assert str(replayed["label"].dtype) == "string"
    assert replayed["label"].tolist()[6] == ""  # empty text is not null
    assert replayed["label"].isna().tolist()[-1]
    assert str(replayed["start_time"].dtype) == "time64[us][pyarrow]"
    assert str(replayed["paid_at"].dtype) == "datetime64[us, Europe/Berlin]"
    assert str(replayed["day"].dtype) == "datetime64[us]"
    assert (str(replayed["id"].dtype), str(replayed["active"].dtype)) == ("Int64", "boolean")
    assert np.isnan(replayed["amount"].iloc[-1])


def _exotic_card(sandbox: Sandbox) -> int:
    """Columns Parquet cannot hold as they are: huge ints, JSON values, times with offsets."""
    huge = ["18446744073709551616", "-9223372036854775809", "1", None, "0"]
    huger = ["1" + "0" * 45, "-" + "9" * 50, None, "2", "3"]
    times = ["10:30:00+02:00", "23:59:59.123456-05:30", None, "00:00:00Z", "12:00:00+00:00"]
    docs = [{"gb": 1.5, "tags": ["a", "b"], "n": None}, [1, 2.5, "x"], None, "text", 42]
    text = ["", None, "null", "plain", "✓ 🚀"]

    def data(values: list[Any]) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    def col(name: str, kind: str, base: str, values: list[Any]) -> Column:
        mask = np.array([v is None for v in values])
        return Column(name, kind, data(values), mask, base_type=base, display_name=name.title())

    columns = [
        col("huge", "text", "type/BigInteger", huge),
        col("huger", "text", "type/BigInteger", huger),
        col("at", "text", "type/TimeWithTZ", times),
        col("doc", "json", "type/JSON", docs),
        col("note", "text", "type/Text", text),
    ]
    table = Table(columns, len(huge))
    cid = 990
    sandbox.cards[cid] = Card(cid, "Exotic values", "SELECT 1", columns, lambda v, ctx: table)
    return cid


def test_exotic_object_columns_replay_exactly(
    sandbox: Sandbox, client: Client, store: SnapshotStore
) -> None:
    cid = _exotic_card(sandbox)
    with pytest.warns(MassiveWarning, match="beyond the 64-bit range"):
        live = client.card(cid)
    assert live["huge"].tolist()[:2] == [2**64, -(2**63) - 1]
    assert live["doc"].tolist()[0] == {"gb": 1.5, "tags": ["a", "b"], "n": None}
    assert live["at"].tolist()[0].utcoffset() == dt.timedelta(hours=2)
    replayed = record_and_load(store, live)
    for name in live.columns:
        assert [type(v) for v in replayed[name]] == [type(v) for v in live[name]], name
        assert replayed[name].tolist() == live[name].tolist(), name
    times = replayed["at"].tolist()
    assert [t if t is None else (t.isoformat(), t.tzinfo) for t in times] == [
        t if t is None else (t.isoformat(), t.tzinfo) for t in live["at"].tolist()
    ]
    layout = json.loads(next(store.directory.glob("*.json")).read_text())["layout"]
    kinds = {c["name"]: (c["kind"], c.get("as")) for c in layout["columns"]}
    assert kinds["huge"] == ("int", "decimal") and kinds["huger"] == ("int", "text")
    assert kinds["at"][0] == "time" and kinds["doc"][0] == "json"


@pytest.mark.slow
def test_large_card_replays_exactly(client: Client, store: SnapshotStore) -> None:
    live = client.card(demo.LARGE)
    assert len(live) == demo.LARGE_ROWS
    record_and_load(store, live)
    (info,) = store.list()
    assert info.rows == demo.LARGE_ROWS
    assert 0 < info.size < live.memory_usage(deep=True).sum()


def test_parameterised_card_replays_and_parameters_match_however_written(
    client: Client, store: SnapshotStore
) -> None:
    live = client.card(
        demo.EARNINGS_FILTERED, {"country": ["US", "DE"], "Date": "2024-01-01~2024-01-05"}
    )
    record_and_load(store, live)
    # the same request written differently: display names, a tuple, the other order
    again = client.card(
        demo.EARNINGS_FILTERED, {"date": "2024-01-01~2024-01-05", "Country": ("US", "DE")}
    )
    assert key_of(store, again) == key_of(store, live)
    assert_frame_equal(store.load(key_of(store, again)), live, check_exact=True)
    # the parameter objects in another order, their keys in another order, or as JSON text
    params = live.attrs["massive"]["parameters"]
    shuffled = [dict(reversed(list(p.items()))) for p in reversed(params)]
    url = live.attrs["massive"]["url"]
    for form in (shuffled, json.dumps(shuffled), tuple(shuffled)):
        key = store.key(url + "/", demo.EARNINGS_FILTERED, form, None)
        assert key == key_of(store, live) and key.digest == key_of(store, live).digest
        store.load(key)


def test_canonical_parameters_keep_value_order() -> None:
    """[min, max] is not [max, min]: values are compared as sent."""
    a = canonical_parameters([{"id": "x", "value": [1, 2]}])
    b = canonical_parameters([{"id": "x", "value": [2, 1]}])
    assert a != b
    assert canonical_parameters([{"value": dt.date(2024, 1, 2), "id": "d"}]) == (
        '[{"id":"d","value":"2024-01-02"}]'
    )


def test_dashboard_cards_record_and_replay_card_by_card(
    client: Client, store: SnapshotStore
) -> None:
    with pytest.warns(MassiveWarning, match="failed"):
        result = client.dashboard(demo.OVERVIEW_DASHBOARD, {"Country": "US"})
    assert len(result) == 2
    for live in result.values():
        key = SnapshotKey.from_frame(live)
        assert key == key_of(store, live) and key.dashboard_id == demo.OVERVIEW_DASHBOARD
        manifest = store.save(key, live)
        assert_replays(store.load(key), live, manifest)
    # the dashboard's card does not stand in for the card read on its own
    filtered = result["Earnings by country (filtered)"]
    alone = store.key(
        filtered.attrs["massive"]["url"],
        demo.EARNINGS_FILTERED,
        filtered.attrs["massive"]["parameters"],
        None,
    )
    with pytest.raises(SnapshotError) as caught:
        store.load(alone)
    assert (
        f"recorded on dashboard {demo.OVERVIEW_DASHBOARD} (dashcard {demo.DASHCARD_FILTERED}), "
        "asked as the card itself" in caught.value.message
    )
    names = sorted(p.name for p in store.directory.iterdir())
    assert any(n.startswith(f"d12-101-{demo.EARNINGS_FILTERED}-earnings-by-country") for n in names)


# -- nothing near is substituted ------------------------------------------------------------------


@pytest.fixture
def recorded_us(client: Client, store: SnapshotStore) -> pd.DataFrame:
    live = client.card(demo.EARNINGS_FILTERED, {"country": ["US"]})
    store.save(key_of(store, live), live)
    return live


def _with_value(params: list[dict[str, Any]], value: Any) -> list[dict[str, Any]]:
    return [{**p, "value": value} for p in params]


MISMATCHES: dict[str, tuple[Callable[[dict[str, Any]], tuple[Any, ...]], str]] = {
    "url": (
        lambda m: ("http://other.example:3000", m["card_id"], m["parameters"], None),
        "recorded on another server URL",
    ),
    "parameters": (
        lambda m: (m["url"], m["card_id"], _with_value(m["parameters"], ["DE"]), None),
        "recorded with country=['US'], asked country=['DE']",
    ),
    "no parameters": (
        lambda m: (m["url"], m["card_id"], [], None),
        "recorded with country=['US'], asked country unset",
    ),
    "limit": (
        lambda m: (m["url"], m["card_id"], m["parameters"], 100),
        "recorded with limit=None, asked limit=100",
    ),
    "card": (
        lambda m: (m["url"], demo.DAILY_EARNINGS, m["parameters"], None),
        "it holds no snapshot of this card at all",
    ),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_a_near_snapshot_is_never_substituted(
    case: str, recorded_us: pd.DataFrame, store: SnapshotStore
) -> None:
    make, difference = MISMATCHES[case]
    asked = store.key(*make(recorded_us.attrs["massive"]))
    assert store.find(asked) is None
    with pytest.raises(SnapshotError) as caught:
        store.load(asked)
    error = caught.value
    assert error.reason == "missing"
    assert difference in error.message
    assert f"card {asked.card_id}" in error.message
    assert str(store.directory) in error.message
    asked_params = json.loads(asked.parameters)
    assert ("country=['DE']" in error.message) == (case == "parameters")
    assert ("no parameters" in error.message) == (not asked_params)
    nearest = store.nearest(asked)
    assert nearest is None if case == "card" else difference in (nearest or "")


def test_nearest_prefers_the_fewest_differences(client: Client, store: SnapshotStore) -> None:
    for countries, limit in ((["US"], 10), (["US", "DE"], 20)):
        live = client.card(demo.EARNINGS_FILTERED, {"country": countries}, limit=limit)
        store.save(key_of(store, live), live)
    m = live.attrs["massive"]  # US and DE, limit 20
    asked = store.key(m["url"], m["card_id"], _with_value(m["parameters"], ["DE"]), 10)
    assert store.nearest(asked) == "recorded with country=['US'], asked country=['DE']"
    other = store.key("http://elsewhere", m["card_id"], m["parameters"], None)
    assert store.nearest(other) == (
        f"recorded on another server URL ({m['url']}), asked http://elsewhere; "
        "recorded with limit=20, asked limit=None"
    )


# -- age ------------------------------------------------------------------------------------------


def test_max_age(recorded_us: pd.DataFrame, store: SnapshotStore) -> None:
    key = key_of(store, recorded_us)
    fetched = dt.datetime.fromisoformat(recorded_us.attrs["massive"]["fetched_at"])
    store.load(key, max_age="7d", now=fetched + dt.timedelta(days=6, hours=23))
    store.load(key, max_age=dt.timedelta(hours=1), now=fetched + dt.timedelta(minutes=59))
    with pytest.raises(SnapshotError) as caught:
        store.load(key, max_age="7d", now=fetched + dt.timedelta(days=8, hours=3))
    assert caught.value.reason == "expired"
    assert "8 days 3 hours old" in caught.value.message
    assert "older than the 7 days allowed" in caught.value.message
    with pytest.raises(SnapshotError, match="31 minutes old"):
        store.load(key, max_age="30m", now=fetched + dt.timedelta(minutes=31))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", dt.timedelta(days=7)),
        ("12h", dt.timedelta(hours=12)),
        ("30m", dt.timedelta(minutes=30)),
        ("45s", dt.timedelta(seconds=45)),
        ("2w", dt.timedelta(weeks=2)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        (" 1.5H ", dt.timedelta(hours=1.5)),
        (None, None),
        (dt.timedelta(0), dt.timedelta(0)),
    ],
)
def test_parse_max_age(text: Any, expected: dt.timedelta | None) -> None:
    assert parse_max_age(text) == expected


@pytest.mark.parametrize("bad", ["", "7", "7x", "d7", "1d 2q", "-1d", 7, dt.timedelta(-1)])
def test_parse_max_age_refuses(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_age"):
        parse_max_age(bad)


def test_parse_mode() -> None:
    assert [parse_mode(m) for m in ("record", "REPLAY", " auto ", "off", None)] == [
        SnapshotMode.RECORD,
        SnapshotMode.REPLAY,
        SnapshotMode.AUTO,
        SnapshotMode.OFF,
        SnapshotMode.OFF,
    ]
    assert parse_mode(SnapshotMode.AUTO) is SnapshotMode.AUTO
    with pytest.raises(ConfigError, match="'record', 'replay', 'auto'"):
        parse_mode("replay-only")


# -- integrity ------------------------------------------------------------------------------------


def _truncate(parquet: Path, manifest: Path) -> None:
    parquet.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])


def _flip_byte(parquet: Path, manifest: Path) -> None:
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    parquet.write_bytes(bytes(data))


def _delete_parquet(parquet: Path, manifest: Path) -> None:
    parquet.unlink()


def _edit_manifest(parquet: Path, manifest: Path) -> None:
    manifest.write_text(manifest.read_text().replace('"rows": 155', '"rows": 154'))


def _edit_manifest_attrs(parquet: Path, manifest: Path) -> None:
    manifest.write_text(manifest.read_text().replace('"Country"', '"Land"', 1))


def _truncate_manifest(parquet: Path, manifest: Path) -> None:
    manifest.write_text(manifest.read_text()[:200])


def _swap_parquet(parquet: Path, manifest: Path) -> None:
    """A valid Parquet file, but another one: the checksum tells."""
    pd.DataFrame({"x": [1]}).to_parquet(parquet)


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        _flip_byte,
        _delete_parquet,
        _edit_manifest,
        _edit_manifest_attrs,
        _truncate_manifest,
        _swap_parquet,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_damaged_snapshot_is_an_error_never_a_partial_frame(
    damage: Callable[[Path, Path], None], recorded_us: pd.DataFrame, store: SnapshotStore
) -> None:
    key = key_of(store, recorded_us)
    info = store.find(key)
    assert info is not None
    assert info.path.read_text().count('"rows": 155') == 1
    damage(info.parquet, info.path)
    with pytest.raises(SnapshotError) as caught:
        store.load(key)
    assert caught.value.reason == "corrupt"
    assert str(info.path) in caught.value.message
    assert "damaged" in caught.value.message
    # in auto mode too: a damaged snapshot is not silently replaced
    with pytest.raises(SnapshotError):
        store.read_through(key, lambda: recorded_us, mode="auto")
    # recording again repairs it
    store.read_through(key, lambda: recorded_us, mode="record")
    assert_frame_equal(store.load(key), recorded_us, check_exact=True)


def test_a_half_written_snapshot_is_never_matched(
    recorded_us: pd.DataFrame, store: SnapshotStore
) -> None:
    """The manifest is written last: a Parquet file without one is not a snapshot."""
    key = key_of(store, recorded_us)
    info = store.find(key)
    assert info is not None
    info.path.unlink()
    (store.directory / ".x.json.123.tmp").write_text("{")  # a crashed write's leftover
    assert store.find(key) is None and store.list() == []
    with pytest.raises(SnapshotError) as caught:
        store.load(key)
    assert caught.value.reason == "missing"


def test_recording_again_replaces_and_leaves_one_pair_of_files(
    client: Client, store: SnapshotStore
) -> None:
    live = client.card(demo.ALL_TYPES)
    key = key_of(store, live)
    store.save(key, live)
    renamed = store.key(key.url, key.card_id, key.parameters, key.limit, name="Renamed card")
    path = store.save(renamed, live.head(3))
    files = sorted(p.name for p in store.directory.iterdir())
    assert files == [f"501-renamed-card-{key.digest[:16]}.json", path.with_suffix(".parquet").name]
    assert len(store.load(key)) == 3
    assert not list(store.directory.glob(".*"))  # no temporary files left


# -- no secrets -----------------------------------------------------------------------------------


def test_no_password_session_or_api_key_is_written(
    sandbox: Sandbox, client: Client, store: SnapshotStore, cache_dir: Path
) -> None:
    frames = [client.card(demo.ALL_TYPES), client.card(demo.EARNINGS_FILTERED, {"country": "US"})]
    with pytest.warns(MassiveWarning):
        frames += list(client.dashboard(demo.OVERVIEW_DASHBOARD).values())
    with Client(sandbox.url, api_key=sandbox.api_key, progress=False) as by_key:
        frames.append(by_key.card(demo.DAILY_EARNINGS, limit=5))
    # credentials in a URL are dropped too
    frames[0].attrs["massive"]["url"] = sandbox.url.replace("://", f"://u:{sandbox.password}@")
    for frame in frames:
        frame.attrs["massive"]["session"] = "must-not-be-written"  # an unknown provenance key
        store.save(key_of(store, frame), frame)
    tokens = {
        value
        for request in sandbox.log
        for name, value in request.headers.items()
        if name.lower() in ("x-metabase-session", "x-api-key")
    }
    assert len(tokens) >= 2
    secrets = [sandbox.password, sandbox.api_key, "must-not-be-written", *tokens]
    files = list(store.directory.iterdir())
    assert len(files) == 2 * len(frames)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (path.name, "a secret")


# -- the modes the wiring uses --------------------------------------------------------------------


def test_read_through_modes(sandbox: Sandbox, client: Client, store: SnapshotStore) -> None:
    calls: list[int] = []

    def fetch() -> pd.DataFrame:
        calls.append(1)
        return client.card(demo.ALL_TYPES)

    key = store.key(sandbox.url, demo.ALL_TYPES, [], None)
    live = store.read_through(key, fetch, mode="off")
    assert len(calls) == 1 and store.list() == []
    with pytest.raises(SnapshotError):
        store.read_through(key, fetch, mode="replay")
    store.read_through(key, fetch, mode=SnapshotMode.AUTO)  # none yet: live, recorded
    assert len(calls) == 2 and len(store.list()) == 1
    sandbox.reset_log()
    replayed = store.read_through(key, fetch, mode="auto")
    replayed_too = store.read_through(key, fetch, mode="replay")
    assert len(calls) == 2 and sandbox.log == []  # offline: not one request
    assert_frame_equal(replayed, live, check_exact=True)
    assert_frame_equal(replayed_too, live, check_exact=True)
    store.read_through(key, fetch, mode="record")
    assert len(calls) == 3
    # auto with a snapshot older than max_age reads live and records again
    later = SnapshotStore(
        store.directory, clock=lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    )
    later.read_through(key, fetch, mode="auto", max_age="1d")
    assert len(calls) == 4


# -- listing --------------------------------------------------------------------------------------


def test_list_describes_each_snapshot(client: Client, store: SnapshotStore) -> None:
    live = client.card(demo.EARNINGS_FILTERED, {"country": ["US"]}, limit=7)
    manifest = store.save(key_of(store, live), live)
    (info,) = store.list()
    m = live.attrs["massive"]
    assert (info.card_id, info.name, info.rows, info.limit) == (497, m["name"], 7, 7)
    assert info.parameters == m["parameters"]
    assert info.url == m["url"]
    assert info.recorded_at == dt.datetime.fromisoformat(m["fetched_at"])
    assert dt.timedelta(0) <= info.age < dt.timedelta(hours=1)
    assert info.size == manifest.stat().st_size + info.parquet.stat().st_size
    assert info.path == manifest and manifest.name.startswith("497-earnings-by-country-filtered-")
    found = store.find(key_of(store, live))
    assert found is not None and (found.key, found.path, found.size) == (
        info.key,
        manifest,
        info.size,
    )
    body = json.loads(manifest.read_text())
    assert body["parquet"]["file"] == info.parquet.name
    assert pd.read_parquet(info.parquet).shape == live.shape  # other tools read it


def test_frames_a_snapshot_cannot_keep_exactly_are_refused(
    client: Client, store: SnapshotStore
) -> None:
    live = client.card(demo.ALL_TYPES)
    key = key_of(store, live)
    for change in (
        lambda f: f.assign(label=f["label"].astype("category")),
        lambda f: f.assign(payload=pd.Series([(1, 2)] * len(f), dtype=object)),
        lambda f: f.assign(payload=pd.Series([{1: "a"}] * len(f), dtype=object)),
        lambda f: f.set_index("id"),
    ):
        with pytest.raises(SnapshotError) as caught:
            store.save(key, change(live))
        assert caught.value.reason == "unsupported"
    assert not store.directory.exists() or not any(store.directory.iterdir())


def test_a_table_that_does_not_fit_its_layout_is_refused(client: Client) -> None:
    from massive_magic import snapshot_format as fmt

    live = client.card(demo.ALL_TYPES)
    table, layout = fmt.encode_frame(live)
    assert_frame_equal(fmt.decode_frame(table, layout), live, check_exact=True)
    for broken in (
        {**layout, "rows": layout["rows"] + 1},
        {**layout, "columns": layout["columns"][1:]},
        {**layout, "columns": [{**c, "dtype": "float64"} for c in layout["columns"]]},
    ):
        with pytest.raises(SnapshotError) as caught:
            fmt.decode_frame(table, broken)
        assert caught.value.reason == "corrupt"
    with pytest.raises(SnapshotError, match="cannot be read"):
        fmt.read_parquet(b"PAR1 not really")
