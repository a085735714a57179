"""One input per card parameter, for the picker: the widget its declaration calls for.

:class:`ParameterInput` rows are built from a :class:`~massive_magic.declarations.ParameterDecl`
(``ParameterDecl.widget`` decides which input: date pickers, number boxes, dropdowns,
text) and read back as the value ``Client.card(..., params=...)`` takes, ``None`` when
the parameter is not set, so the card's default applies. Standard ipywidgets only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from .declarations import ParameterDecl
from .picker_view import note_line

__all__ = ["ParameterInput", "make_input"]

_NO_VALUE = "—"  # dropdown entry meaning "not set: the card's default applies"
_LABEL_LAYOUT = {"width": "11em"}


def _number(value: Any) -> float | None:
    """A parameter default such as ``"0"``, ``10`` or ``[5]`` as a number, else None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


# --------------------------------------------------------------------------- inputs


class ParameterInput:
    """One parameter's input row. ``get()`` is None when the parameter is not set."""

    kind = "text"

    def __init__(self, decl: ParameterDecl) -> None:
        self.decl = decl
        self.name = decl.key
        self.label = decl.label
        self.type = decl.type
        self.required = decl.required
        self.default = decl.default
        self.controls: list[widgets.Widget] = self._build()
        label = self.label + (" *" if self.required else "")
        self.hint = widgets.HTML()
        self.row = widgets.HBox(
            [
                widgets.Label(label, layout=_LABEL_LAYOUT, tooltip=f"{self.name} ({self.type})"),
                *self.controls,
                self.hint,
            ]
        )
        self.row.add_class("massive-param")
        self.row.add_class(f"massive-param-{self.kind}")
        self.row.add_class("massive-param--" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name))
        self.observe(lambda _change: self._update_hint())
        self._update_hint()

    def _update_hint(self) -> None:
        """Say when a parameter is not sent (a number box always shows a number)."""
        text = ""
        if self.get() is None:
            text = "not set"
            if self.default is not None:
                text += ", default " + ", ".join(map(str, _listify(self.default)))
            if self.required:
                text += " (required)"
        self.hint.value = note_line(text) if text else ""

    def set(self, value: Any) -> None:
        """Show ``value`` (None: not set); raises ValueError when it cannot fit."""
        self._set(value)
        self._update_hint()

    def _build(self) -> list[widgets.Widget]:
        default = "" if self.default is None else ", ".join(map(str, _listify(self.default)))
        return [widgets.Text(value=default, placeholder=self._placeholder())]

    def _placeholder(self) -> str:
        return {
            "date/month-year": "2026-01",
            "date/quarter-year": "Q1-2026",
            "date/relative": "past30days",
        }.get(self.type, "")

    def get(self) -> Any:
        text = self.controls[0].value.strip()
        return text or None

    def _set(self, value: Any) -> None:
        self.controls[0].value = "" if value is None else str(value)

    def observe(self, callback: Callable[[Any], None]) -> None:
        for control in self.controls:
            control.observe(callback, names="value")


class _NumberInput(ParameterInput):
    """A number box. Number boxes always hold a number, so an untouched box without
    a default means "not set" and is not sent."""

    kind = "number"

    def _build(self) -> list[widgets.Widget]:
        initial = _number(self.default)
        self._touched = initial is not None
        box = widgets.FloatText(value=0.0 if initial is None else initial, layout={"width": "10em"})
        box.observe(self._touch, names="value")
        return [box]

    def _touch(self, _change: Any) -> None:
        self._touched = True

    def get(self) -> Any:
        if not (self._touched or self.required):
            return None
        return _as_number(self.controls[0].value)

    def _set(self, value: Any) -> None:
        number = _number(value)
        if number is None and value is not None:
            raise ValueError(f"{self.label}: {value!r} is not a number")
        self.controls[0].value = 0.0 if number is None else number
        self._touched = number is not None


class _NumberRangeInput(ParameterInput):
    """``number/between``: two number boxes, either side may stay unset."""

    kind = "number-range"

    def _build(self) -> list[widgets.Widget]:
        defaults = [*_listify(self.default), None, None]
        self._touched = [False, False]
        boxes = []
        for i in range(2):
            initial = _number(defaults[i])
            self._touched[i] = initial is not None
            box = widgets.FloatText(
                value=0.0 if initial is None else initial,
                description="min" if i == 0 else "max",
                layout={"width": "12em"},
                style={"description_width": "3em"},
            )
            box.observe(lambda _c, i=i: self._touched.__setitem__(i, True), names="value")
            boxes.append(box)
        return boxes

    def get(self) -> Any:
        values = [
            _as_number(box.value) if touched else None
            for box, touched in zip(self.controls, self._touched, strict=True)
        ]
        return None if values == [None, None] else values

    def _set(self, value: Any) -> None:
        values = [*_listify(value), None, None]
        for i, box in enumerate(self.controls):
            number = _number(values[i])
            box.value = 0.0 if number is None else number
            self._touched[i] = number is not None


class _DateInput(ParameterInput):
    """A single date: one date picker."""

    kind = "date"

    def _build(self) -> list[widgets.Widget]:
        return [widgets.DatePicker(value=_date(self.default), layout={"width": "12em"})]

    def get(self) -> Any:
        value = self.controls[0].value
        return value.isoformat() if value else None

    def _set(self, value: Any) -> None:
        parsed = _date(value)
        if parsed is None and value is not None:
            raise ValueError(f"{self.label}: {value!r} is not a date (YYYY-MM-DD)")
        self.controls[0].value = parsed


class _DateRangeInput(ParameterInput):
    """A date range: two date pickers (``from~to``, either end may be open).

    ``date/all-options`` also accepts Metabase's other date strings
    (``past30days``, ``2026-01``, ...), typed into the extra text box, which wins.
    """

    kind = "date-range"

    def _build(self) -> list[widgets.Widget]:
        start, end, other = self._split(self.default)
        controls: list[widgets.Widget] = [
            widgets.DatePicker(value=start, description="from", layout={"width": "15em"}),
            widgets.DatePicker(value=end, description="to", layout={"width": "15em"}),
        ]
        for picker in controls:
            picker.style.description_width = "3em"
        if self.type == "date/all-options":
            controls.append(
                widgets.Text(
                    value=other or "",
                    placeholder="or e.g. past30days",
                    layout={"width": "12em"},
                )
            )
        return controls

    @staticmethod
    def _split(value: Any) -> tuple[dt.date | None, dt.date | None, str | None]:
        if value is None or value == "":
            return None, None, None
        if isinstance(value, (tuple, list)) and len(value) == 2:  # (start, end), as the API takes
            value = "~".join("" if end is None else str(end) for end in value)
        text = str(value)
        if "~" in text:
            left, _, right = text.partition("~")
            start, end = _date(left), _date(right)
            if (left and start is None) or (right and end is None):
                return None, None, text
            return start, end, None
        single = _date(text)
        return (single, single, None) if single else (None, None, text)

    def get(self) -> Any:
        if len(self.controls) > 2 and self.controls[2].value.strip():
            return self.controls[2].value.strip()
        start, end = self.controls[0].value, self.controls[1].value
        if start is None and end is None:
            return None
        if self.type == "date/all-options" and start == end:
            return start.isoformat()
        return f"{start.isoformat() if start else ''}~{end.isoformat() if end else ''}"

    def _set(self, value: Any) -> None:
        start, end, other = self._split(value)
        if other is not None and len(self.controls) < 3:
            raise ValueError(f"{self.label}: {value!r} is not a date range (YYYY-MM-DD~YYYY-MM-DD)")
        self.controls[0].value, self.controls[1].value = start, end
        if len(self.controls) > 2:
            self.controls[2].value = other or ""


class _ChoiceInput(ParameterInput):
    """A dropdown of the values Metabase lists; the first entry means "not set"."""

    kind = "choice"

    def _build(self) -> list[widgets.Widget]:
        pairs = self._pairs()
        options: list[tuple[str, Any]] = [(_NO_VALUE, None), *pairs]
        default = _listify(self.default)
        initial = default[0] if len(default) == 1 and default[0] in [v for _, v in pairs] else None
        return [widgets.Dropdown(options=options, value=initial, layout={"width": "16em"})]

    def _pairs(self) -> list[tuple[str, Any]]:
        return _options(self.decl)

    def get(self) -> Any:
        return self.controls[0].value

    def _set(self, value: Any) -> None:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        allowed = [v for _, v in self.controls[0].options]
        if value not in allowed:
            raise ValueError(f"{self.label}: {value!r} is not one of {allowed[1:]!r}")
        self.controls[0].value = value


class _BoolInput(_ChoiceInput):
    kind = "bool"

    def _pairs(self) -> list[tuple[str, Any]]:
        return [("true", True), ("false", False)]


class _MultiChoiceInput(ParameterInput):
    """Several of the listed values (Ctrl/Cmd-click); none selected means "not set"."""

    kind = "multi-choice"

    def _build(self) -> list[widgets.Widget]:
        pairs = _options(self.decl)
        known = [v for _, v in pairs]
        initial = tuple(v for v in _listify(self.default) if v in known)
        return [
            widgets.SelectMultiple(
                options=pairs, value=initial, rows=min(len(pairs), 8), layout={"width": "16em"}
            )
        ]

    def get(self) -> Any:
        return list(self.controls[0].value) or None

    def _set(self, value: Any) -> None:
        values = _listify(value)
        allowed = [v for _, v in self.controls[0].options]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(f"{self.label}: {unknown!r} not among {allowed!r}")
        self.controls[0].value = tuple(values)


def _options(decl: ParameterDecl) -> list[tuple[str, Any]]:
    """The listed values as ``(label, value)`` options, Metabase's labels shown."""
    return [(label, value) for value, label in decl.choices or ()]


_INPUTS: dict[str, type[ParameterInput]] = {
    "choice": _ChoiceInput,
    "multi-choice": _MultiChoiceInput,
    "date": _DateInput,
    "date-range": _DateRangeInput,
    "number": _NumberInput,
    "number-range": _NumberRangeInput,
    "bool": _BoolInput,
    "text": ParameterInput,
}


def make_input(decl: Mapping[str, Any] | ParameterDecl) -> ParameterInput:
    """The input that fits a declaration (``ParameterDecl.widget`` decides which)."""
    parsed = ParameterDecl.from_json(decl)
    return _INPUTS[parsed.widget](parsed)
