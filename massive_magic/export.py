"""A card's result written to a file or a stream: Parquet, CSV, JSON lines or Arrow IPC.

No HTTP: the result was read completely before anything is written. A file is
written atomically (:func:`atomic_file`): into a temporary file in the target's
directory, renamed over the target only when the whole result is written, so a
failure leaves no new file and an existing one untouched.

==========  ==============================  =============================================
format      written from                    what a reader gets back
==========  ==============================  =============================================
parquet     the pandas frame                ``pandas.read_parquet``: the frame, its dtypes
                                            and ``attrs`` (kept under pandas' own
                                            ``PANDAS_ATTRS`` key); the provenance, display
                                            names and types also as the Arrow table keeps
                                            them, for other readers
arrow       the Arrow table                 the table: schema, metadata (``massive``, ...)
csv         the Arrow table                 a header of column names; ISO dates, times and
                                            date-times (with their offset); an empty string
                                            is ``""``, null is nothing, which most CSV
                                            readers cannot tell apart
json        the Arrow table                 one JSON object per line, dates and times as
                                            ISO text, JSON columns as their text
==========  ==============================  =============================================

Two limits of pandas' own Parquet reader (pandas 3): text in an ``object`` column
(JSON, times with a zone, unknown types) comes back as the ``str`` dtype, and the
column labels as a ``str`` index; JSON values that were not text are written as
their JSON text. Every other dtype comes back exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from .converters import ARROW_ERRORS
from .frames import METADATA_KEYS, arrow_from_frame

__all__ = [
    "BINARY_FORMATS",
    "EXTENSIONS",
    "FORMATS",
    "READ_AS",
    "atomic_file",
    "format_of",
    "text_columns_with_gaps",
    "write",
    "write_file",
]

FORMATS = ("parquet", "csv", "json", "arrow")
#: File name extension -> format (``.json`` is JSON lines: one object per line).
EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
BINARY_FORMATS = frozenset({"parquet", "arrow"})
#: The output kind (``Client.card(output=...)``) each format is written from.
READ_AS = {"parquet": "pandas", "csv": "arrow", "json": "arrow", "arrow": "arrow"}
#: Rows per JSON-lines batch: the batch's Python values stay small next to the table.
_JSON_BATCH = 65_536


def format_of(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's extension names, or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def write(result: Any, fmt: str, sink: IO[bytes]) -> None:
    """Write ``result`` (a frame for parquet, a table otherwise) to a binary stream.

    A frame given for another format, or a table for parquet, is converted first
    (``frames.arrow_from_frame``; ``pyarrow.Table.to_pandas``).
    """
    if fmt == "parquet":
        frame = result if isinstance(result, pd.DataFrame) else _frame_of(result)
        pq.write_table(_parquet_table(frame), sink)
        return
    table = arrow_from_frame(result) if isinstance(result, pd.DataFrame) else result
    if fmt == "arrow":
        with pa_ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    elif fmt == "csv":
        pa_csv.write_csv(_with_text_times(table), sink)
    elif fmt == "json":
        _json_lines(table, sink)
    else:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def write_file(result: Any, fmt: str, path: str | os.PathLike[str]) -> None:
    """Write ``result`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(Path(path)) as sink:
        write(result, fmt, sink)


def write_stream(result: Any, fmt: str, stream: IO[bytes]) -> None:
    """Write ``result`` to a stream that may not seek (standard output), all at once."""
    buffer = io.BytesIO()
    write(result, fmt, buffer)
    stream.write(buffer.getbuffer())
    stream.flush()


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` only if the block completes.

    The bytes go to a hidden temporary file in ``path``'s directory (so the
    rename stays on one file system), flushed to disk, then renamed over
    ``path``. An exception removes the temporary file: no new file, and an
    existing ``path`` untouched. An existing file's permissions are kept; a new
    file gets the usual ``0666`` less the umask.
    """
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def text_columns_with_gaps(result: Any) -> list[str]:
    """Text columns holding an empty string or a null, which CSV cannot tell apart."""
    table = arrow_from_frame(result) if isinstance(result, pd.DataFrame) else result
    found = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        if column.null_count or pc.any(pc.equal(pc.utf8_length(column), 0)).as_py():
            found.append(name)
    return found


# -- the formats ---------------------------------------------------------------------------


def _frame_of(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.attrs.update({key: json.loads(value) for key, value in _our_metadata(table).items()})
    return frame


def _our_metadata(table: pa.Table) -> dict[str, bytes]:
    metadata = table.schema.metadata or {}
    return {key: metadata[key.encode()] for key in METADATA_KEYS if key.encode() in metadata}


def _parquet_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as pandas would write it, plus the metadata the Arrow table carries."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except ARROW_ERRORS:
        # JSON values that are not text, integers beyond 64 bits: as in the Arrow table.
        texted = frame.copy(deep=False)
        types: dict[str, pa.DataType] = {}
        for name in [n for n in frame.columns if frame[n].dtype == object]:
            one = frame[[name]]
            one.attrs = {"metabase_types": frame.attrs.get("metabase_types") or {}}
            column = arrow_from_frame(one).column(0)
            texted[name] = pd.Series(column.to_pylist(), index=frame.index, dtype=object)
            types[name] = column.type
        schema = pa.Schema.from_pandas(texted, preserve_index=False)
        for name, kind in types.items():
            index = schema.get_field_index(name)
            schema = schema.set(index, pa.field(name, kind))
        table = pa.Table.from_pandas(texted, schema=schema, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    attrs = {key: frame.attrs[key] for key in METADATA_KEYS if key in frame.attrs}
    metadata.update({key.encode(): _dumps(value) for key, value in attrs.items()})
    if frame.attrs:
        metadata[b"PANDAS_ATTRS"] = _dumps(frame.attrs)  # what pandas.read_parquet restores
    return table.replace_schema_metadata(metadata)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()


def _with_text_times(table: pa.Table) -> pa.Table:
    """Date-times as ISO 8601 text in their zone, ``2024-01-15T10:30:00+01:00``; times
    as ``10:30:00``. Microseconds are written when a column has any."""
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if pa.types.is_timestamp(field.type):
            column = _whole_seconds(column, pa.timestamp("s", tz=field.type.tz))
            pattern = "%Y-%m-%dT%H:%M:%S" + ("%Ez" if field.type.tz else "")
            text = pc.strftime(column, format=pattern).cast(pa.large_string())
            table = table.set_column(index, pa.field(field.name, pa.large_string()), text)
        elif pa.types.is_time(field.type):
            column = _whole_seconds(column, pa.time32("s"))
            table = table.set_column(index, pa.field(field.name, column.type), column)
    return table


def _whole_seconds(column: pa.ChunkedArray, seconds: pa.DataType) -> pa.ChunkedArray:
    """``column`` in whole seconds when no value has a fraction (a safe cast fails else)."""
    try:
        return column.cast(seconds)
    except pa.ArrowInvalid:
        return column


def _json_lines(table: pa.Table, sink: IO[bytes]) -> None:
    """One JSON object per row; dates and times as ISO text, big integers exact."""
    table = _with_text_times(table)
    names = table.column_names
    wide = any(pa.types.is_decimal(field.type) for field in table.schema)
    for batch in table.to_batches(max_chunksize=_JSON_BATCH):
        columns = [_json_values(column) for column in batch.columns]
        rows = (dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))
        if wide:  # integers beyond 64 bits, which orjson refuses
            sink.write(
                b"".join(
                    (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                    for row in rows
                )
            )
        else:
            sink.write(
                b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
            )


def _json_values(column: pa.Array) -> list[Any]:
    kind = column.type
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return column.cast(pa.large_string()).to_pylist()
    if pa.types.is_decimal(kind):
        return [None if v is None else int(v) for v in column.to_pylist()]
    return column.to_pylist()
