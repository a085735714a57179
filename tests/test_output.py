"""``output="arrow"|"polars"``: every read path builds the Arrow table straight from its
chunks, with the provenance in the schema metadata; the magics' ``--as`` and
``MassiveMagics.output``; ``frames.arrow_from_frame`` for frames already built."""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from massive_magic import Client
from massive_magic.errors import ConfigError, IncompleteResultWarning
from massive_magic.frames import arrow_attrs, arrow_from_frame
from massive_magic.metadata import DashboardResult
from massive_magic.outputs import ARROW, PANDAS, POLARS, output_kind
from massive_magic.reader import EXPORT_ROW_CAP
from massive_magic.sandbox import Sandbox, demo
from massive_magic.settings import ENV_PASSWORD

STR = pa.large_string()
#: Provenance that differs between two reads of the same card.
VOLATILE = ("fetched_at", "elapsed", "source", "cached")


def stable(provenance: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in provenance.items() if k not in VOLATILE}


def assert_same_read(table: pa.Table, frame: pd.DataFrame) -> None:
    """``table`` is exactly the Arrow form of ``frame``: schema, values, metadata."""
    assert isinstance(table, pa.Table)
    expected = arrow_from_frame(frame)
    assert table.schema.equals(expected.schema), (table.schema, expected.schema)
    assert table.equals(expected)
    got, want = arrow_attrs(table), arrow_attrs(expected)
    assert got.keys() == want.keys() == {"massive", "display_names", "metabase_types"}
    assert got["display_names"] == want["display_names"] == frame.attrs["display_names"]
    assert got["metabase_types"] == frame.attrs["metabase_types"]
    assert stable(got["massive"]) == stable(frame.attrs["massive"])


# -- the Arrow schema of every type family -------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_all_types_card_as_arrow(srv: Sandbox, client: Client, zone: str) -> None:
    srv.report_timezone = zone
    table = client.card(demo.ALL_TYPES, output="arrow")
    assert dict(zip(table.column_names, table.schema.types, strict=True)) == {
        "id": pa.int64(),
        "big_id": pa.int64(),
        "amount": pa.float64(),
        "ratio": pa.float64(),
        "label": STR,
        "active": pa.bool_(),
        "day": pa.date32(),
        "created_at": pa.timestamp("us", tz=zone),
        "paid_at": pa.timestamp("us", tz=zone),
        "start_time": pa.time64("us"),
        "payload": STR,
        "variant": STR,
        "count": pa.int64(),
        "count_2": pa.int64(),
    }
    assert table.column("label").to_pylist()[6] == ""  # text keeps "" and null apart
    assert table.column("label").to_pylist()[10] is None
    assert table.column("big_id").to_pylist()[4] == 2**63 - 1  # exact
    meta = json.loads(table.schema.metadata[b"massive"])
    assert meta["card_id"] == demo.ALL_TYPES and meta["name"] == "All column types"
    assert meta["row_count"] == table.num_rows == 11
    assert meta["source"] == "api" and meta["results_timezone"] == zone
    frame = client.card(demo.ALL_TYPES)
    assert_same_read(table, frame)  # arrow_from_frame(Client.card(x)) == Client.card(x, arrow)
    assert arrow_attrs(table)["massive"].keys() == frame.attrs["massive"].keys()


def test_arrow_output_does_not_build_a_dataframe(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table comes from the builder's chunks: no pandas frame is made on the way."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a pandas DataFrame was built")

    monkeypatch.setattr(pd.DataFrame, "__init__", refuse)
    table = client.card(demo.SEQUENCE, {"rows": 5}, output="arrow")
    assert table.column("n").to_pylist() == [1, 2, 3, 4, 5]


# -- every read path ---------------------------------------------------------------------------


def seq(client: Client, rows: int, **options: Any) -> Any:
    return client.card(demo.SEQUENCE, {"rows": rows}, **options)


@pytest.mark.parametrize(
    ("rows", "limit", "refuse_api", "source", "requests"),
    [
        (50, None, False, "api", ["api"]),  # the api export, to its tail
        (50, 10, False, "query", ["query"]),  # /query, sliced to the limit
        (2_500, 2_100, False, "api", ["api", "query"]),  # export stopped at the limit: cols
        (50, None, True, "query", ["api", "query"]),  # export refused: /query
        (2_500, None, True, "csv", ["api", "query", "csv"]),  # ... truncated: the csv export
        (2_500, 2_100, True, "csv", ["api", "query", "csv"]),  # csv, sliced to the limit
    ],
)
def test_every_read_path_gives_the_same_table(
    srv: Sandbox,
    client: Client,
    rows: int,
    limit: int | None,
    refuse_api: bool,
    source: str,
    requests: list[str],
) -> None:
    client.card_info(demo.SEQUENCE)  # the declarations, out of the counts below
    expected_rows = rows if limit is None else min(rows, limit)
    tables = []
    for output in ("arrow", "pandas"):
        srv.reset_log()
        if refuse_api:
            srv.faults.fail_next(status=404, path=f"/api/card/{demo.SEQUENCE}/query/api")
        tables.append(seq(client, rows, limit=limit, output=output))
        assert [r.path.rsplit("/", 1)[-1] for r in srv.log] == requests
    table, frame = tables
    assert frame.attrs["massive"]["source"] == source
    assert table.num_rows == expected_rows
    assert table.column("n").to_pylist() == list(range(1, expected_rows + 1))
    assert_same_read(table, frame)
    assert arrow_attrs(table)["massive"]["limit"] == limit


@pytest.mark.slow  # a million rows
def test_export_cap_warns_for_arrow_too(srv: Sandbox, client: Client) -> None:
    client.card_info(demo.SEQUENCE)
    with pytest.warns(IncompleteResultWarning, match="export maximum"):
        table = seq(client, EXPORT_ROW_CAP, output="arrow")
    assert table.num_rows == EXPORT_ROW_CAP
    meta = arrow_attrs(table)["massive"]
    assert meta["truncated"] is True and meta["row_count"] == EXPORT_ROW_CAP


def test_dashboard_output(srv: Sandbox, client: Client) -> None:
    with pytest.warns(UserWarning, match="failed"):  # the overview's broken card
        tables = client.dashboard(demo.OVERVIEW_DASHBOARD, output="arrow")
    assert isinstance(tables, DashboardResult) and tables
    for name, table in tables.items():
        assert isinstance(table, pa.Table), name
        assert arrow_attrs(table)["massive"]["dashboard_id"] == demo.OVERVIEW_DASHBOARD
    with pytest.warns(UserWarning, match="failed"):
        frames = client.dashboard(demo.OVERVIEW_DASHBOARD, output="polars")
    assert frames.keys() == tables.keys() and set(frames.errors) == set(tables.errors)
    for name, frame in frames.items():
        assert isinstance(frame, pl.DataFrame)
        assert frame.to_arrow().column_names == tables[name].column_names


# -- polars ----------------------------------------------------------------------------------


def test_polars_output_from_the_table_without_a_copy(srv: Sandbox, client: Client) -> None:
    frame = client.card(demo.ALL_TYPES, output="polars")
    table = client.card(demo.ALL_TYPES, output="arrow")
    assert isinstance(frame, pl.DataFrame)
    schema = dict(frame.schema)
    assert schema["id"] == pl.Int64 and schema["amount"] == pl.Float64
    assert schema["label"] == pl.String and schema["active"] == pl.Boolean
    assert schema["day"] == pl.Date and schema["start_time"] == pl.Time
    assert schema["created_at"] == pl.Datetime("us", "Europe/Berlin")
    for name in table.column_names:
        assert frame[name].to_list() == table.column(name).to_pylist(), name
    # numbers are handed over, not copied
    table = client.card(demo.SEQUENCE, {"rows": 3}, output="arrow")
    moved = POLARS.finish(table)
    source = table.column("n").chunks[0].buffers()[1].address
    assert moved["n"].to_arrow().buffers()[1].address == source


def test_polars_without_polars_names_the_extra_before_any_request(
    srv: Sandbox, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars now raises ImportError
    for call in (
        lambda: client.card(demo.ALL_TYPES, output="polars"),
        lambda: client.dashboard(demo.OVERVIEW_DASHBOARD, output="polars"),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert "massive-magic[polars]" in info.value.message
        assert "pip install 'massive-magic[polars]'" in str(info.value)
    assert srv.count() == 0
    assert isinstance(client.card(demo.SEQUENCE, output="arrow"), pa.Table)  # arrow still works


@pytest.mark.parametrize("bad", ["Arrow", "numpy", "", None, 1, PANDAS.__class__])
def test_a_bad_output_is_a_config_error_before_any_request(
    srv: Sandbox, client: Client, bad: Any
) -> None:
    with pytest.raises(ConfigError, match="output must be one of 'pandas', 'arrow', 'polars'"):
        client.card(demo.SEQUENCE, output=bad)
    with pytest.raises(ConfigError, match="output must be one of"):
        client.dashboard(demo.OVERVIEW_DASHBOARD, output=bad)
    assert srv.count() == 0


def test_output_kinds() -> None:
    assert [output_kind(n) for n in ("pandas", "arrow", "polars")] == [PANDAS, ARROW, POLARS]
    assert output_kind(ARROW) is ARROW
    assert POLARS.built is ARROW and ARROW.built is ARROW and PANDAS.built is PANDAS


# -- arrow_from_frame (snapshots replay pandas frames) --------------------------------------


def test_arrow_from_frame_of_other_frames() -> None:
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None], dtype="Int64"),
            "f": [1.5, float("nan")],
            "s": pd.array(["a", None], dtype="string[pyarrow]"),
            "o": [{"a": 1}, None],
            "w": [2**70, None],
            "d": pd.to_datetime(["2024-01-15", None]).astype("datetime64[us]"),
        }
    )
    frame.attrs["metabase_types"] = {"w": "type/BigInteger", "d": "type/Date"}
    table = arrow_from_frame(frame)
    assert table.schema.types == [
        pa.int64(),
        pa.float64(),
        STR,
        STR,
        pa.decimal128(38, 0),
        pa.date32(),
    ]
    assert table.column("f").to_pylist() == [1.5, None]  # NaN is pandas' null
    assert table.column("o").to_pylist() == ['{"a":1}', None]  # JSON text, as on reads
    assert table.column("w").to_pylist()[0] == 2**70
    assert arrow_attrs(table) == {"metabase_types": frame.attrs["metabase_types"]}
    empty = arrow_from_frame(frame.iloc[:0])
    assert empty.num_rows == 0 and empty.schema.types[:3] == table.schema.types[:3]
    assert POLARS.from_frame(frame.iloc[:, :3]).shape == (2, 3)


# -- the magics: --as and MassiveMagics.output -------------------------------------------------


def login(ip: InteractiveShell, srv: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    result = ip.run_cell(f"%massive_login --url {srv.url} --user {srv.username}")
    assert result.success, result.error_in_exec


def test_magic_as_arrow_and_polars(
    ip: InteractiveShell, srv: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    capsys.readouterr()
    for kind, cls in (("arrow", pa.Table), ("polars", pl.DataFrame), ("pandas", pd.DataFrame)):
        result = ip.run_cell(f"%massive_card {demo.SEQUENCE} --as {kind} -o seq")
        assert result.success, result.error_in_exec
        assert isinstance(ip.user_ns["seq"], cls)
        out = capsys.readouterr().out.strip()
        assert out.startswith("seq: 10 rows x 2 columns from 'Sequence' in "), (kind, out)
    result = ip.run_cell(f"%%massive_card {demo.SEQUENCE} --as arrow\nrows = 3")
    assert isinstance(result.result, pa.Table) and result.result.num_rows == 3
    with pytest.warns(UserWarning, match="failed"):  # the overview's broken card
        result = ip.run_cell(f"%massive_dashboard {demo.OVERVIEW_DASHBOARD} --as polars -o dash")
    assert result.success, result.error_in_exec
    assert all(isinstance(f, pl.DataFrame) for f in ip.user_ns["dash"].values())
    assert "dash: 2 of 3 cards from 'Partner overview'" in capsys.readouterr().out


def test_magic_output_traitlet(
    ip: InteractiveShell, srv: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    assert ip.run_cell('%config MassiveMagics.output = "arrow"').success
    assert isinstance(ip.run_cell(f"%massive_card {demo.SEQUENCE}").result, pa.Table)
    result = ip.run_cell(f"%massive_card {demo.SEQUENCE} --as pandas")  # the option wins
    assert isinstance(result.result, pd.DataFrame)
    ip.run_cell('%config MassiveMagics.output = "numpy"')  # refused: a TraitError, logged
    magics = ip.magics_manager.registry["MassiveMagics"]
    assert magics.output == "arrow"
    ip.run_cell('%config MassiveMagics.output = "Polars"')
    assert magics.output == "polars"
    assert isinstance(ip.run_cell(f"%massive_card {demo.SEQUENCE}").result, pl.DataFrame)


def test_magic_bad_as_and_missing_polars_are_usage_errors(
    ip: InteractiveShell, srv: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    srv.reset_log()
    result = ip.run_cell(f"%massive_card {demo.SEQUENCE} --as numpy")
    assert type(result.error_in_exec) is UsageError
    monkeypatch.setitem(sys.modules, "polars", None)
    for line in (
        f"%massive_card {demo.SEQUENCE} --as polars",
        f"%massive_dashboard {demo.OVERVIEW_DASHBOARD} --as polars",
    ):
        result = ip.run_cell(line)
        assert type(result.error_in_exec) is UsageError
        assert "%pip install 'massive-magic[polars]'" in str(result.error_in_exec)
    assert srv.count() == 0
