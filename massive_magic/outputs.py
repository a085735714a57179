"""What a read gives back: a pandas DataFrame, an Arrow table or a polars DataFrame.

Every read path (``/query`` JSON, the streamed ``api`` export, the csv export)
builds its result through an :class:`Output`, so the path never knows which kind
it makes: the Arrow table comes straight from the builder's chunks, without
going through pandas. The provenance goes where each kind keeps it: pandas in
``attrs["massive"]``, Arrow in the schema metadata key ``massive`` (the same
dict, as JSON). polars frames have no metadata; a polars result is read as an
Arrow table and handed over at the end (:meth:`Output.finish`), without a copy
of numbers, dates and booleans.

    out = output_kind("arrow")          # ConfigError for anything else, or no polars
    table = out.tag(out.from_result(data), provenance)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from .errors import ConfigError
from .frames import (
    FrameBuilder,
    arrow_from_csv,
    arrow_from_frame,
    arrow_from_result,
    frame_from_csv,
    frame_from_result,
    require_polars,
    to_polars,
    with_provenance,
)

__all__ = ["ARROW", "OUTPUTS", "PANDAS", "POLARS", "Output", "output_kind"]

#: The values ``output=`` takes (``Client.card``, ``Client.dashboard``, ``--as``).
OUTPUTS = ("pandas", "arrow", "polars")


class Output:
    """pandas: how a read path builds, slices, counts and tags its result."""

    name = "pandas"

    @property
    def built(self) -> Output:
        """The kind a read builds before :meth:`finish` (polars is built as Arrow)."""
        return self

    def from_result(self, data: dict[str, Any]) -> Any:
        return frame_from_result(data)

    def build(
        self,
        builder: FrameBuilder,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
    ) -> Any:
        return builder.build(cols, results_timezone=results_timezone)

    def from_csv(
        self, cols: list[dict[str, Any]], body: bytes, *, results_timezone: str | None = None
    ) -> Any:
        return frame_from_csv(cols, body, results_timezone=results_timezone)

    def head(self, result: Any, n: int) -> Any:
        return result.head(n)

    def rows(self, result: Any) -> int:
        return len(result)

    def tag(self, result: Any, provenance: Mapping[str, Any]) -> Any:
        result.attrs["massive"] = dict(provenance)
        return result

    def finish(self, result: Any) -> Any:
        """The result handed to the caller (the tagged result itself, but for polars)."""
        return result

    def from_frame(self, frame: Any) -> Any:
        """A pandas frame the read path built (a snapshot's) as this kind, provenance kept."""
        return frame

    def __repr__(self) -> str:
        return f"<Output {self.name}>"


class ArrowOutput(Output):
    """A ``pyarrow.Table``, built from the builder's chunks; provenance in the metadata."""

    name = "arrow"

    def from_result(self, data: dict[str, Any]) -> Any:
        return arrow_from_result(data)

    def build(
        self,
        builder: FrameBuilder,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
    ) -> Any:
        return builder.build_arrow(cols, results_timezone=results_timezone)

    def from_csv(
        self, cols: list[dict[str, Any]], body: bytes, *, results_timezone: str | None = None
    ) -> Any:
        return arrow_from_csv(cols, body, results_timezone=results_timezone)

    def head(self, result: Any, n: int) -> Any:
        return result.slice(0, n)  # zero-copy

    def rows(self, result: Any) -> int:
        return int(result.num_rows)

    def tag(self, result: Any, provenance: Mapping[str, Any]) -> Any:
        return with_provenance(result, provenance)

    def from_frame(self, frame: Any) -> Any:
        return self.finish(arrow_from_frame(frame))


class PolarsOutput(ArrowOutput):
    """A ``polars.DataFrame`` made from the finished Arrow table (``frames.to_polars``)."""

    name = "polars"

    @property
    def built(self) -> Output:
        return ARROW

    def finish(self, result: Any) -> Any:
        if isinstance(result, pa.Table):
            return to_polars(result)
        return result


PANDAS: Output = Output()
ARROW: Output = ArrowOutput()
POLARS: Output = PolarsOutput()
_BY_NAME = {out.name: out for out in (PANDAS, ARROW, POLARS)}


def output_kind(output: object) -> Output:
    """The :class:`Output` named ``output`` (or ``output`` itself when it is one).

    ``ConfigError`` for another value, and for ``"polars"`` when polars is not
    installed (it names the extra), so neither costs a request.
    """
    if isinstance(output, Output):
        return output
    out = _BY_NAME.get(output) if isinstance(output, str) else None
    if out is None:
        choices = ", ".join(repr(name) for name in OUTPUTS)
        raise ConfigError(f"output must be one of {choices}, not {output!r}.")
    if out is POLARS:
        require_polars()
    return out
