"""Metabase results -> typed pandas DataFrames, Arrow tables or polars frames. No HTTP.

Every read path ends here: a whole ``/query`` answer (``frame_from_result``,
``arrow_from_result``), a streamed ``api`` export (``FrameBuilder``, fed batch by
batch), a CSV export (``frame_from_csv``, ``arrow_from_csv``). Each output comes
from the same typed chunks, and each type is decided once, in
``typetable.TYPE_TABLE`` (its docstring lists the pandas dtype and Arrow type of
every Metabase type): pandas, Arrow and polars never disagree on a column.

Column names are Metabase's ``name`` (unique). A DataFrame carries
``attrs["display_names"]`` and ``attrs["metabase_types"]``; an Arrow table
carries the same dicts as JSON in its schema metadata, plus ``massive`` (the
provenance: card, parameters, fetched_at, ...) once ``with_provenance`` adds it.
``arrow_attrs`` reads them back as a DataFrame's ``attrs``. ``to_polars`` turns a
table into a polars DataFrame (the optional extra ``massive-magic[polars]``).
``arrow_from_frame`` goes the other way for a frame already built (a snapshot's):
the Arrow table the read path would have given.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from massive_magic.builder import FrameBuilder
from massive_magic.converters import STR, Column, Integer
from massive_magic.errors import ConfigError, NextStep, QueryFailed, ResponseError, Step
from massive_magic.typetable import TYPE_TABLE, converter_for

if TYPE_CHECKING:
    import polars

__all__ = [
    "METADATA_KEYS",
    "TYPE_TABLE",
    "FrameBuilder",
    "arrow_attrs",
    "arrow_from_csv",
    "arrow_from_frame",
    "arrow_from_result",
    "frame_from_csv",
    "frame_from_result",
    "require_polars",
    "to_polars",
    "with_provenance",
]

#: The schema metadata keys of an Arrow table, each a JSON object (see ``arrow_attrs``).
METADATA_KEYS = ("massive", "display_names", "metabase_types")


def _result_builder(data: dict[str, Any]) -> FrameBuilder:
    builder = FrameBuilder(data.get("cols") or [], results_timezone=data.get("results_timezone"))
    builder.add_rows(data.get("rows") or [])
    return builder


def frame_from_result(data: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from a whole ``/query`` ``data`` object (``rows``, ``cols``, ...)."""
    return _result_builder(data).build()


def arrow_from_result(data: dict[str, Any]) -> pa.Table:
    """An Arrow table from a whole ``/query`` ``data`` object, typed as ``frame_from_result``."""
    return _result_builder(data).build_arrow()


def _csv_builder(
    cols: list[dict[str, Any]], body: bytes, results_timezone: str | None
) -> FrameBuilder:
    """A builder holding a Metabase CSV export's cells, matched to ``cols`` by position."""
    stripped = body.lstrip()
    if stripped.startswith(b"{"):
        _raise_error_document(stripped)
    # CSV drops the offset of local date-times: they are wall-clock times in the zone.
    builder = FrameBuilder(cols, results_timezone=results_timezone, localize_naive=True)
    if not stripped:
        return builder
    names = [f"c{k}" for k in range(len(cols))]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(body),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, STR),
                null_values=[""],  # not Arrow's default list, which has "null", "NaN", "N/A"
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ResponseError(
            f"The CSV export could not be read ({str(exc)[:200]}); run it again or "
            "check the card in Metabase."
        ) from None
    for batch in table.to_batches():
        builder.add_text_batch(batch)
    return builder


def frame_from_csv(
    cols: list[dict[str, Any]], body: bytes, *, results_timezone: str | None = None
) -> pd.DataFrame:
    """A DataFrame from a Metabase CSV export (``format_rows=false``), same dtypes as JSON.

    The header holds display names, so columns are matched by position with
    ``cols``. CSV cannot tell empty text from null: empty cells are null in
    every column, text included. Date-times written without an offset (CSV drops
    it for local date-times) are placed in ``results_timezone`` when given,
    which is what the JSON answer would have said.
    """
    return _csv_builder(cols, body, results_timezone).build()


def arrow_from_csv(
    cols: list[dict[str, Any]], body: bytes, *, results_timezone: str | None = None
) -> pa.Table:
    """An Arrow table from a Metabase CSV export, typed as ``frame_from_csv`` (same caveats)."""
    return _csv_builder(cols, body, results_timezone).build_arrow()


def _raise_error_document(body: bytes) -> None:
    """Exports write a failed query's JSON error document instead of the CSV."""
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(doc, dict) and doc.get("status") == "failed":
        error = str(doc.get("error") or "Error running query")
        raise QueryFailed(
            f"The query failed in Metabase: {error}",
            error=error,
            error_type=doc.get("error_type"),
            details=doc,
        )


def with_provenance(table: pa.Table, provenance: Mapping[str, Any]) -> pa.Table:
    """``table`` with ``provenance`` (a DataFrame's ``attrs["massive"]``) in its metadata.

    Stored as JSON under the schema metadata key ``massive``, next to the
    ``display_names`` and ``metabase_types`` already there; values JSON cannot
    hold (dates) are written as text. The columns are shared, not copied.
    """
    metadata = dict(table.schema.metadata or {})
    metadata[b"massive"] = json.dumps(dict(provenance), ensure_ascii=False, default=str).encode()
    return table.replace_schema_metadata(metadata)


def arrow_attrs(table: pa.Table) -> dict[str, Any]:
    """The table's ``massive``, ``display_names`` and ``metabase_types``, as in ``df.attrs``.

    Keys missing from the metadata are left out; other metadata is ignored.
    """
    metadata = table.schema.metadata or {}
    attrs: dict[str, Any] = {}
    for key in METADATA_KEYS:
        raw = metadata.get(key.encode())
        if raw is not None:
            attrs[key] = json.loads(raw)
    return attrs


def arrow_from_frame(frame: pd.DataFrame) -> pa.Table:
    """The Arrow table ``build_arrow`` gives for the result ``build`` made into ``frame``.

    Each column's Arrow type comes from ``attrs["metabase_types"]`` through
    ``TYPE_TABLE``, as on the read path, so ``arrow_from_frame(Client.card(x))``
    equals ``Client.card(x, output="arrow")``: dates (midnight ``datetime64`` in
    pandas) become ``date32``, float NaN becomes null, JSON and times with a zone
    become text, integers beyond 64 bits ``decimal128(38, 0)``. The frame's attrs
    (``display_names``, ``metabase_types``, ``massive``) go into the schema
    metadata. A column without a Metabase type keeps the type Arrow infers from
    its dtype (an ``object`` column becomes JSON text).
    """
    kinds = frame.attrs.get("metabase_types") or {}
    fields: list[pa.Field] = []
    columns: list[pa.ChunkedArray] = []
    for name in frame.columns:
        series = frame[name]
        kind = kinds.get(name)
        converter = converter_for(kind or "type/*")
        zone = getattr(series.dtype, "tz", None)
        column = Column(str(name), kind or "type/*", None if zone is None else str(zone))
        if series.dtype == object:
            values = series.to_numpy(dtype=object)
            if isinstance(converter, Integer):  # exact Python ints beyond 64 bits
                array = pa.chunked_array([pa.array(values, type=pa.decimal128(38, 0))])
            else:  # JSON, times with a zone, unknown types: text, as the converter writes it
                array = converter.to_arrow([values], column)
        else:
            inferred = pa.array(series, from_pandas=True)  # NaN -> null, as on the read path
            if not isinstance(inferred, pa.ChunkedArray):
                inferred = pa.chunked_array([inferred])
            target = converter.to_arrow([], column).type if kind else inferred.type
            if pa.types.is_string(target):
                target = STR
            array = inferred.cast(target)
        fields.append(pa.field(str(name), array.type))
        columns.append(array)
    metadata = {
        key: json.dumps(frame.attrs[key], ensure_ascii=False, default=str)
        for key in METADATA_KEYS
        if key in frame.attrs
    }
    schema = pa.schema(fields, metadata=metadata)
    if not columns:
        return schema.empty_table()
    return pa.Table.from_arrays(columns, schema=schema)


def require_polars() -> None:
    """Raise ``ConfigError`` naming the extra when polars cannot be imported."""
    try:
        import polars  # noqa: F401
    except ImportError:
        raise ConfigError(
            "polars is not installed; it comes with the optional extra massive-magic[polars].",
            next_steps=(NextStep(Step.INSTALL_EXTRA, names=("polars",)),),
        ) from None


def to_polars(table: pa.Table) -> polars.DataFrame:
    """The Arrow table as a polars DataFrame (``polars.from_arrow``, chunks kept as they are).

    Numbers, booleans, dates and date-times are handed over without a copy; text
    is re-laid out in polars' own string layout. polars frames have no metadata:
    keep ``arrow_attrs(table)`` for the provenance. Needs the optional extra
    ``massive-magic[polars]``; without it, ``ConfigError``.
    """
    require_polars()
    import polars as pl

    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame
