"""The Client surface over real HTTP: laziness, identity, login, card_info, cards, types."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from massive_magic import Client, errors
from massive_magic.errors import AccessDenied, CardNotFound, ConfigError
from massive_magic.sandbox import demo
from massive_magic.sandbox.catalog import Card
from massive_magic.settings import ENV_API_KEY, ENV_EMAIL, ENV_PASSWORD, ENV_URL, Settings

# -- construction, identity ----------------------------------------------------------------


def test_constructing_sends_nothing(srv: Any, tmp_path: Path) -> None:
    srv.reset_log()
    mb = Client(srv.url, srv.username, srv.password, cache_dir=tmp_path)
    assert mb.url == srv.url
    assert mb.username == srv.username
    repr(mb)
    mb.close()
    assert srv.log == []


def test_repr_shows_url_and_user_only(srv: Any, tmp_path: Path) -> None:
    with Client(srv.url + "/", srv.username, srv.password, cache_dir=tmp_path) as mb:
        mb.login()
        text = repr(mb)
        token = mb.session._current.token  # type: ignore[union-attr]
    assert text == f"Client(url={srv.url!r}, user={srv.username!r})"
    assert srv.password not in text and token not in text


def test_repr_with_an_api_key_hides_the_key(srv: Any, tmp_path: Path) -> None:
    mb = Client(srv.url, api_key=srv.api_key, cache_dir=tmp_path)
    assert srv.api_key not in repr(mb)
    assert "api key" in repr(mb)


def test_environment_fills_the_gaps(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, srv.url)
    monkeypatch.setenv(ENV_EMAIL, srv.username)
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    with Client(cache_dir=tmp_path, progress=False) as mb:
        assert (mb.url, mb.username) == (srv.url, srv.username)
        assert len(mb.card(demo.ALL_TYPES)) == 11


def test_from_settings_reads_nothing_from_the_environment(
    srv: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings are used as given: an API key in the environment cannot beat them."""
    settings = Settings.resolve(
        srv.url, srv.username, srv.password, cache_dir=tmp_path, timeout=(3, 40), environ={}
    )
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9")
    monkeypatch.setenv(ENV_API_KEY, "mb_not_a_key")
    monkeypatch.setenv(ENV_PASSWORD, "not-the-password")
    asked: list[str] = []
    srv.reset_log()
    mb = Client.from_settings(settings, progress=False, password_prompt=asked.append)
    assert mb.settings is settings and mb.progress is False
    assert repr(mb) == f"Client(url={srv.url!r}, user={srv.username!r})"
    assert srv.log == []  # constructing sends nothing
    with mb:
        assert len(mb.card(demo.ALL_TYPES)) == 11
    assert srv.count("POST", "/api/session") == 1
    assert not any(r.header("X-API-Key") for r in srv.log)
    assert asked == []


def test_api_key_client(srv: Any, tmp_path: Path) -> None:
    srv.reset_log()
    with Client(srv.url, api_key=srv.api_key, cache_dir=tmp_path, progress=False) as mb:
        df = mb.card(demo.ALL_TYPES)
    assert len(df) == 11
    assert srv.count("POST", "/api/session") == 0
    assert sorted(r.path for r in srv.log) == [
        f"/api/card/{demo.ALL_TYPES}",  # the name, looked up alongside the query
        f"/api/card/{demo.ALL_TYPES}/query/api",
    ]
    assert all(r.header("X-API-Key") == srv.api_key for r in srv.log)


def test_login_once_then_reuse_the_session(srv: Any, tmp_path: Path) -> None:
    srv.reset_log()
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=False) as mb:
        info = mb.login()
        assert info.username == srv.username
        mb.card(demo.ALL_TYPES)
        mb.card(demo.ALL_TYPES)
    with Client(srv.url, srv.username, cache_dir=tmp_path, progress=False) as again:
        again.card(demo.ALL_TYPES)  # the cached session: no password needed
    assert srv.count("POST", "/api/session") == 1


def test_logout(srv: Any, tmp_path: Path) -> None:
    with Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, progress=False) as mb:
        mb.login()
        srv.reset_log()
        mb.logout()
        assert srv.count("DELETE", "/api/session") == 1


def test_timeout_reaches_the_settings(srv: Any, tmp_path: Path) -> None:
    mb = Client(srv.url, srv.username, cache_dir=tmp_path, timeout=(2, 30))
    assert (mb.settings.connect_timeout, mb.settings.read_timeout) == (2, 30)
    with pytest.raises(ConfigError):
        Client("ftp://nope")


# -- card_info and cards ---------------------------------------------------------------------


def test_card_info(srv: Any, client: Client) -> None:
    info = client.card_info(f"{srv.url}/question/{demo.EARNINGS_FILTERED}-earnings")
    assert info["id"] == demo.EARNINGS_FILTERED
    assert info["name"] == "Earnings by country (filtered)"
    assert info["collection"] == "Partner reporting"
    assert info["type"] == "question"
    assert info["description"].startswith("Daily earnings with date")
    params = {p["slug"]: p for p in info["parameters"]}
    assert list(params) == ["date", "country", "platform", "min_earnings"]
    assert params["date"] == {
        "slug": "date",
        "name": "Date",
        "type": "date/all-options",
        "required": False,
        "default": "2024-01-01~2024-01-31",
        "multi_select": False,
    }
    assert params["country"]["values"] == list(demo.COUNTRIES)
    assert params["min_earnings"]["type"] == "number/="
    assert [c["name"] for c in info["columns"]] == [
        "day",
        "app",
        "platform",
        "country",
        "bandwidth_gb",
        "earnings_usd",
    ]
    assert info["columns"][0] == {
        "name": "day",
        "display_name": "Day",
        "type": "type/Date",
        "dtype": "datetime64[us]",
    }


def test_card_info_is_cached(srv: Any, client: Client) -> None:
    client.card_info(demo.SEQUENCE)
    client.card_info(str(demo.SEQUENCE))
    client.card(demo.SEQUENCE, {"rows": 2})
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1


def test_card_info_errors(client: Client) -> None:
    with pytest.raises(CardNotFound, match="Card 4242 not found"):
        client.card_info(4242)
    with pytest.raises(AccessDenied):
        client.card_info(demo.RESTRICTED)


def test_cards(srv: Any, client: Client) -> None:
    df = client.cards()
    assert list(df.columns) == ["id", "name", "collection", "type", "description"]
    assert df["id"].dtype == "Int64"
    for col in ("name", "collection", "type", "description"):
        assert pd.api.types.is_string_dtype(df[col].dtype), col
    ids = set(df["id"])
    assert {demo.DAILY_EARNINGS, demo.ALL_TYPES, demo.SEQUENCE, demo.LARGE} <= ids
    row = df.set_index("id").loc[demo.ALL_TYPES]
    assert (row["name"], row["collection"], row["type"]) == ("All column types", "QA", "question")
    # names are remembered for provenance, at no extra request
    srv.reset_log()
    assert client.card(demo.ALL_TYPES).attrs["massive"]["name"] == "All column types"
    assert len(srv.log) == 1


# -- every type family -------------------------------------------------------------------------


ALL_TYPES_DTYPES = {
    "id": "Int64",
    "big_id": "Int64",
    "amount": "float64",
    "ratio": "float64",
    "label": "string",
    "active": "boolean",
    "day": "datetime64[us]",
    "created_at": "datetime64[us, Europe/Berlin]",
    "paid_at": "datetime64[us, Europe/Berlin]",
    "start_time": "time64[us][pyarrow]",
    "payload": "object",
    "variant": "object",
    "count": "Int64",
    "count_2": "Int64",
}


def berlin(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args), tz="Europe/Berlin")


def test_all_types_dtypes_and_values(client: Client) -> None:
    df = client.card(demo.ALL_TYPES)
    assert len(df) == 11
    assert {c: str(t) for c, t in df.dtypes.items()} == ALL_TYPES_DTYPES
    assert df.iloc[-1].isna().all(), "the last row is all nulls"
    assert df["id"].tolist()[:10] == list(range(1, 11))
    assert df["big_id"].tolist()[:10] == [
        1,
        9007199254740991,
        9007199254740992,
        9007199254740993,
        9223372036854775807,
        -9223372036854775807,
        -9007199254740993,
        0,
        42,
        123456789012,
    ]
    assert df["amount"].tolist()[:4] == [1234.5, 0.1, -3.25, 99999999.99]
    assert df["ratio"].tolist()[:3] == [0.5, 1e-10, 3.141592653589793]
    # text with commas, quotes, newlines, unicode, the word "null" and the empty string
    assert df["label"].tolist()[:10] == list(demo.ALL_TYPES_TEXT)
    assert df["label"].iloc[5] == "null" and df["label"].iloc[6] == ""
    assert df["active"].tolist()[:4] == [True, False, True, False]
    assert df["day"].tolist()[:2] == [pd.Timestamp("2024-01-15"), pd.Timestamp("2024-03-31")]
    assert df["day"].iloc[5] == pd.Timestamp("2000-02-29")
    assert df["created_at"].iloc[0] == berlin(2024, 1, 15, 10, 30)
    assert df["created_at"].iloc[3] == berlin(2024, 10, 27, 23, 59, 59)
    assert df["paid_at"].iloc[0] == pd.Timestamp("2024-01-15 09:30", tz="UTC")
    assert df["paid_at"].iloc[4] == berlin(2025, 1, 1, 0, 30)
    assert df["start_time"].tolist()[:3] == [dt.time(10, 30), dt.time(0, 0), dt.time(23, 59, 59)]
    assert df["payload"].iloc[0] == '{"gb": 1.5, "tags": ["a", "b"]}'
    assert df["payload"].iloc[9] == "null"
    assert df["count"].tolist()[:2] == [10, 20] and df["count_2"].tolist()[:2] == [100, 200]
    # two columns share the display name "Count": names stay unique, labels are kept
    assert df.attrs["display_names"]["count"] == df.attrs["display_names"]["count_2"] == "Count"


@pytest.mark.parametrize("source", ["api", "csv"])
def test_all_types_through_the_exports(srv: Any, client: Client, source: str) -> None:
    """Past the 2,000-row cap (api export, or its csv fallback) the frame is the same."""
    table = demo.all_types_table()
    big = table.take(np.tile(np.arange(table.length), 200))
    srv.cards[950] = Card(
        950,
        "All types x200",
        "SELECT * FROM qa.all_types_x200",
        table.head(0).columns,
        lambda values, ctx: big,
    )
    if source == "csv":
        srv.faults.fail_next(status=404, path="/api/card/950/query/api")
    small = client.card(demo.ALL_TYPES)
    df = client.card(950)
    assert df.attrs["massive"]["source"] == source
    assert len(df) == 2_200
    assert {c: str(t) for c, t in df.dtypes.items()} == ALL_TYPES_DTYPES
    if source == "csv":
        # CSV writes null and "" alike, so the empty string comes back as null
        # (documented in frames.frame_from_csv); the text "null" stays text.
        for frame in (small, df):
            for col in ("label", "payload", "variant"):
                frame.loc[frame[col] == "", col] = None
    for start in (0, 1_100, 2_189):
        part = df.iloc[start : start + 11].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, small, check_exact=True)


def test_csv_keeps_the_text_null(srv: Any, client: Client) -> None:
    table = demo.all_types_table()
    big = table.take(np.tile(np.arange(table.length), 200))
    srv.cards[951] = Card(951, "x", "SELECT 1", table.head(0).columns, lambda values, ctx: big)
    srv.faults.fail_next(status=404, path="/api/card/951/query/api")
    df = client.card(951)
    assert df.attrs["massive"]["source"] == "csv"
    assert df["label"].iloc[5] == "null"


def test_empty_result_keeps_columns_and_dtypes(client: Client) -> None:
    empty = client.card(demo.SEQUENCE, {"rows": 0})
    some = client.card(demo.SEQUENCE, {"rows": 3})
    assert len(empty) == 0
    assert list(empty.columns) == ["n", "label"]
    assert empty.dtypes.to_dict() == some.dtypes.to_dict()


def test_password_prompt_is_asked_once_when_needed(srv: Any, tmp_path: Path) -> None:
    asked: list[str] = []

    def prompt(message: str) -> str:
        asked.append(message)
        return srv.password

    mb = Client(srv.url, srv.username, cache_dir=tmp_path, progress=False, password_prompt=prompt)
    assert asked == []  # constructing asks nothing
    assert len(mb.card(demo.ALL_TYPES)) == 11
    assert len(mb.card(demo.ALL_TYPES)) == 11
    assert len(asked) == 1 and srv.password not in asked[0]
    mb.close()


def test_client_refuses_remote_http_unless_allowed() -> None:
    """A password never travels in clear text by accident: remote http:// needs an opt-in."""
    with pytest.raises(errors.ConfigError, match="https"):
        Client("http://metabase.example.org", "ana@partner.example", "pw")
    mb = Client("http://metabase.example.org", "ana@partner.example", "pw", allow_http=True)
    assert mb.settings.allow_http
    with pytest.warns(errors.MassiveWarning, match="http"):
        mb.session  # noqa: B018 - the session warns when it is made (no request is sent)
    assert "pw" not in repr(mb)
