"""``massive-magic export``: run as a subprocess against the sandbox, files read back.

Each subprocess costs about a second of imports, so one run checks several things
where that is natural. The child gets the settings through the environment, as
a cron job would, with stdin that is not a terminal; its session cache is in the
test's ``tmp_path``. The in-process tests at the end cover :mod:`massive_magic.export`
itself (atomic writes, formats).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from massive_magic import Client, export
from massive_magic.cli_base import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_OK, EXIT_QUERY, EXIT_USAGE
from massive_magic.frames import arrow_attrs, arrow_from_frame, frame_from_csv
from massive_magic.reader import EXPORT_ROW_CAP
from massive_magic.sandbox import Sandbox, demo
from massive_magic.settings import ENV_API_KEY, ENV_CACHE_DIR, ENV_EMAIL, ENV_PASSWORD, ENV_URL

VOLATILE = ("fetched_at", "elapsed", "source", "cached")
ALL_TYPES_TEXT = ("label", "payload", "variant")


def stable(provenance: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in provenance.items() if k not in VOLATILE}


Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def run(srv: Sandbox, tmp_path: Path) -> Run:
    """``run(*args, env=..., api_key=False)``: ``python -m massive_magic.cli export ...``."""

    def go(*args: str, api_key: bool = False, **env: str) -> subprocess.CompletedProcess[bytes]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
        environ[ENV_URL] = srv.url
        environ[ENV_CACHE_DIR] = str(tmp_path / "cache")
        if api_key:
            environ[ENV_API_KEY] = srv.api_key
        else:
            environ[ENV_EMAIL] = srv.username
            environ[ENV_PASSWORD] = srv.password
        environ.update(env)
        return subprocess.run(
            [sys.executable, "-m", "massive_magic.cli", "export", *args],
            cwd=tmp_path,
            env=environ,
            stdin=subprocess.DEVNULL,  # not a terminal: never a prompt
            capture_output=True,
            timeout=300,
        )

    return go


def one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode()
    assert err.startswith("massive-magic: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def card_cols(client: Client, ref: int) -> list[dict[str, Any]]:
    """The card's ``cols`` as Metabase's answer has them (for reading a CSV back)."""
    return [
        {"name": c["name"], "display_name": c["display_name"], "base_type": c["type"]}
        for c in client.card_info(ref)["columns"]
    ]


# -- each format, read back ----------------------------------------------------------------------


def test_parquet_reads_back_as_the_clients_frame(run: Run, client: Client, tmp_path: Path) -> None:
    done = run(str(demo.ALL_TYPES), "-o", "all.parquet")
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout == b""
    assert done.stderr.decode().startswith(
        f"Wrote 11 rows x 14 columns of 'All column types' (card {demo.ALL_TYPES}) to all.parquet"
    )
    expected = client.card(demo.ALL_TYPES)
    back = pd.read_parquet(tmp_path / "all.parquet")
    assert stable(back.attrs.pop("massive")) == stable(expected.attrs.pop("massive"))
    assert back.attrs == expected.attrs  # display names, Metabase types
    # pandas 3 reads text in object columns (JSON) back as its str dtype, and the
    # column labels as a str index: the values are the same.
    objects = [name for name in expected.columns if expected[name].dtype == object]
    assert objects == ["payload", "variant"]
    pd.testing.assert_frame_equal(
        back,
        expected.astype(dict.fromkeys(objects, back["payload"].dtype)),
        check_column_type=False,
    )
    assert list(back.columns) == list(expected.columns)
    others = [n for n in expected.columns if n not in objects]
    assert (back[others].dtypes == expected[others].dtypes).all()
    # and for any other Parquet reader, the metadata the Arrow table carries
    arrow_meta = arrow_attrs(pq.read_table(tmp_path / "all.parquet"))
    assert arrow_meta["display_names"] == expected.attrs["display_names"]
    assert arrow_meta["massive"]["card_id"] == demo.ALL_TYPES


def test_arrow_file_with_an_api_key_and_no_terminal(
    run: Run, srv: Sandbox, client: Client, tmp_path: Path
) -> None:
    """An API key alone, no e-mail, no password, stdin not a terminal: no login at all."""
    srv.reset_log()
    done = run(str(demo.ALL_TYPES), "-o", "all.feather", "-q", api_key=True)
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stderr == b""  # -q: no note, no summary
    assert srv.count("POST", "/api/session") == 0
    assert all(r.header("X-API-Key") == srv.api_key for r in srv.log)
    with pa_ipc.open_file(tmp_path / "all.feather") as reader:
        table = reader.read_all()
    expected = client.card(demo.ALL_TYPES, output="arrow")
    assert table.schema.equals(expected.schema) and table.equals(expected)
    meta = arrow_attrs(table)
    assert stable(meta.pop("massive")) == stable(arrow_attrs(expected).pop("massive"))
    assert meta == {k: v for k, v in arrow_attrs(expected).items() if k != "massive"}


def test_json_lines(run: Run, client: Client, tmp_path: Path) -> None:
    done = run(str(demo.ALL_TYPES), "-o", "all.json")
    assert done.returncode == EXIT_OK, done.stderr
    lines = (tmp_path / "all.json").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    expected = client.card(demo.ALL_TYPES)
    assert len(rows) == len(expected) == 11
    assert list(rows[0]) == list(expected.columns)
    first = rows[0]
    assert first["id"] == 1 and first["amount"] == 1234.5 and first["active"] is True
    assert first["day"] == "2024-01-15" and first["start_time"] == "10:30:00"
    assert first["created_at"] == "2024-01-15T10:30:00+01:00"  # in the report's zone
    assert first["payload"] == expected["payload"][0]  # JSON columns: their text
    assert rows[4]["big_id"] == 2**63 - 1  # exact
    assert rows[6]["label"] == "" and rows[10]["label"] is None  # JSON keeps them apart
    back = pd.read_json(io.StringIO("\n".join(lines)), lines=True, dtype=False)
    assert back["label"].tolist()[:6] == expected["label"].tolist()[:6]


def test_csv_to_standard_output_with_the_note(run: Run, client: Client) -> None:
    done = run(str(demo.ALL_TYPES))  # -o - and csv are the defaults
    assert done.returncode == EXIT_OK, done.stderr
    err = done.stderr.decode().splitlines()
    assert err[0] == (
        "massive-magic: note: CSV cannot tell an empty string from a null; columns 'label', "
        "'payload', 'variant' hold one or both. --format parquet or arrow keeps them apart."
    )
    assert err[1].startswith("Wrote 11 rows x 14 columns of 'All column types'")
    assert "to standard output" in err[1] and len(err) == 2
    expected = client.card(demo.ALL_TYPES)
    # Read back with the card's columns (the header holds the names), every dtype is the
    # client's; only text's "" and null are one.
    zone = expected.attrs["massive"]["results_timezone"]
    back = frame_from_csv(card_cols(client, demo.ALL_TYPES), done.stdout, results_timezone=zone)
    assert done.stdout.splitlines()[0].decode() == ",".join(f'"{c}"' for c in expected.columns)
    for name in ALL_TYPES_TEXT:
        expected[name] = expected[name].replace("", None)
    back.attrs = expected.attrs
    pd.testing.assert_frame_equal(back, expected)


def test_parameters_lists_and_limit(run: Run, client: Client, tmp_path: Path) -> None:
    params = {
        "country": ["DE", "GB"],
        "date": ["2024-01-01", "2024-01-31"],
        "platform": "Android",
        "min_earnings": 10,
    }
    done = run(
        str(demo.EARNINGS_FILTERED),
        "-p",
        "country=DE",
        "-p",
        "Country=GB",  # a name again adds to the list; names match in any case
        "-p",
        'date=["2024-01-01", "2024-01-31"]',
        "-p",
        "platform=Android",
        "-p",
        "Min earnings=10",  # a display name
        "--limit",
        "40",
        "-o",
        "eu.csv",
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert b"note:" not in done.stderr  # no text column holds "" or null
    expected = client.card(demo.EARNINGS_FILTERED, params, limit=40)
    assert 0 < len(expected) <= 40 and set(expected["country"]) == {"DE", "GB"}
    body = (tmp_path / "eu.csv").read_bytes()
    back = frame_from_csv(card_cols(client, demo.EARNINGS_FILTERED), body)
    back.attrs = expected.attrs
    pd.testing.assert_frame_equal(back, expected)


# -- exit codes, atomic writes ------------------------------------------------------------------


def test_exit_codes(run: Run, srv: Sandbox, tmp_path: Path) -> None:
    srv.reset_log()
    usage = run(str(demo.EARNINGS_FILTERED), "-p", "nope=1", "-o", "x.csv")
    assert usage.returncode == EXIT_USAGE
    assert "has no parameter 'nope'" in one_error_line(usage)
    bad_json = run(str(demo.EARNINGS_FILTERED), "-p", 'country=["DE"', "-o", "x.csv")
    assert bad_json.returncode == EXIT_USAGE
    assert one_error_line(bad_json).startswith("massive-magic: -p country: ")
    fresh = {ENV_CACHE_DIR: str(tmp_path / "fresh"), ENV_PASSWORD: "wrong"}  # no cached session
    auth = run(str(demo.ALL_TYPES), "-o", "x.csv", **fresh)
    assert auth.returncode == EXIT_AUTH
    assert "did not match" in one_error_line(auth)
    forbidden = run(str(demo.RESTRICTED), "-o", "x.csv")
    assert forbidden.returncode == EXIT_NOT_FOUND
    assert "Run massive-magic cards to see the cards you can read." in one_error_line(forbidden)
    failed = run(str(demo.BROKEN), "-o", "x.csv")
    assert failed.returncode == EXIT_QUERY
    assert f"Card {demo.BROKEN} failed" in one_error_line(failed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "fresh"]  # no file, no .part


def test_a_cut_body_writes_nothing(run: Run, srv: Sandbox, tmp_path: Path) -> None:
    """Exit 5; a new file is not created and an existing one is not touched."""
    existing = tmp_path / "kept.parquet"
    existing.write_bytes(b"yesterday's export")
    os.chmod(existing, 0o640)
    for name in ("kept.parquet", "new.csv"):
        srv.faults.cut_next(path=f"/api/card/{demo.LARGE}/query/api")
        done = run(str(demo.LARGE), "-o", name)
        assert done.returncode == EXIT_QUERY
        assert "ended early" in one_error_line(done)
    assert existing.read_bytes() == b"yesterday's export"
    assert existing.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "kept.parquet"]


@pytest.mark.slow  # a million rows
def test_the_export_cap_is_an_error(run: Run, srv: Sandbox, tmp_path: Path) -> None:
    done = run(str(demo.SEQUENCE), "-p", f"rows={EXPORT_ROW_CAP}", "-o", "capped.arrow")
    assert done.returncode == EXIT_QUERY
    assert "export maximum" in one_error_line(done)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


# -- massive_magic.export in-process ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("a.PQ", "parquet"),
        ("a.csv", "csv"),
        ("a.json", "json"),
        ("a.jsonl", "json"),
        ("a.ndjson", "json"),
        ("a.arrow", "arrow"),
        ("a.feather", "arrow"),
        ("a.xlsx", None),
        ("a", None),
    ],
)
def test_format_of(name: str, fmt: str | None) -> None:
    assert export.format_of(name) == fmt


def test_atomic_file_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), export.atomic_file(target) as sink:
        sink.write(b"half of the new")
        raise RuntimeError("the disk is full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with export.atomic_file(target) as sink:
        sink.write(b"new")
    assert target.read_text() == "new"
    fresh = tmp_path / "fresh.csv"
    with export.atomic_file(fresh) as sink:
        sink.write(b"x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_accepts_either_kind(client: Client) -> None:
    frame = client.card(demo.ALL_TYPES)
    table = client.card(demo.ALL_TYPES, output="arrow")
    for fmt in export.FORMATS:
        from_frame, from_table = io.BytesIO(), io.BytesIO()
        export.write(frame, fmt, from_frame)
        export.write(table, fmt, from_table)
        if fmt == "csv" or fmt == "json":
            assert from_frame.getvalue() == from_table.getvalue(), fmt
    assert export.text_columns_with_gaps(frame) == list(ALL_TYPES_TEXT)
    assert export.text_columns_with_gaps(client.card(demo.SEQUENCE)) == []
    with pytest.raises(ValueError, match="unknown format"):
        export.write(table, "xlsx", io.BytesIO())


def test_parquet_of_json_values_that_are_not_text() -> None:
    """Values pandas' Parquet writer refuses (dicts, ints beyond 64 bits) go as the Arrow
    table has them: JSON text and decimal128."""
    frame = pd.DataFrame({"j": [{"a": 1}, "x", None], "w": [2**70, 1, None]})
    frame.attrs = {"metabase_types": {"j": "type/JSON", "w": "type/BigInteger"}}
    sink = io.BytesIO()
    export.write(frame, "parquet", sink)
    table = pq.read_table(pa.BufferReader(sink.getvalue()))
    assert table.column("j").to_pylist() == ['{"a":1}', "x", None]
    assert table.column("w").type == pa.decimal128(38, 0)
    assert pd.read_parquet(io.BytesIO(sink.getvalue())).attrs == frame.attrs
    assert arrow_from_frame(frame).column("j").to_pylist() == table.column("j").to_pylist()
