"""CardPicker: browse, parametrise and load cards from a notebook, standard ipywidgets only.

``%massive_cards`` (or ``massive_magic.picker()``) shows::

    [search box                    ]
    [list of matching cards        ]
    description of the selected card
    one input per parameter (date pickers, text/number boxes, dropdowns)
    [Load] [Copy as code]  status
    [code box: the %%massive_card cell that reproduces the selection]
    progress bar and warnings of the last load
    [output area: the first rows, or a short error message]

Only stock ipywidgets are used (no custom front-end code), so the picker renders
wherever ipywidgets does. The card list is fetched once; card metadata on
selection (the client caches it). Every callback catches errors and shows a
short message in the output area, so the widget never dies; the Python methods
(:meth:`CardPicker.select`, :meth:`CardPicker.load`) show the message *and*
raise, so scripts fail loudly.

"Copy as code" is the way back to a reproducible notebook: the picker builds
the ``%%massive_card`` cell for the current selection and shows it in a
copyable text box. The magics also inject IPython's ``set_next_input``; it is
called too, but Jupyter only delivers that request with the reply to an
executed cell, so from a button click the new cell appears after the next cell
you run (and right away when :meth:`CardPicker.copy_code` is called in a cell).
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .cellparams import DEFAULT_VARIABLE, format_cell
from .errors import MassiveError, Step, render
from .parameters import ParameterDecl
from .refs import card_id

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

__all__ = ["PICKER_WORDS", "CardPicker", "format_cell", "picker"]

#: How many rows of a loaded frame the output area shows.
PREVIEW_ROWS = 10

#: What to do next, in the picker's words (a widget in a notebook: its own controls
#: where it has one, the magics where it has none). See ``errors.render``.
PICKER_WORDS: Mapping[Step, str] = {
    Step.LIST_CARDS: "Search the list above for the cards you can read.",
    Step.SHOW_PARAMETERS: "Select the card in the list to see its parameters.",
    Step.GIVE_PARAMETER: "Give {names} a value in the inputs above.",
    Step.REFRESH: "Run the card's code with --refresh (%%massive_card {ref} --refresh).",
    Step.READ_DASHBOARD: "Read the whole dashboard with %massive_dashboard {ref}.",
    Step.READ_CARD: "Select card {ref} in the list.",
    Step.LOGIN: "Run %massive_login --force, then open the picker again.",
    Step.SET_USER: "Run %massive_login --user EMAIL (or set {names}), then open the picker again.",
    Step.SET_PASSWORD: "Set {names} in the kernel's environment, or run %massive_login.",
    Step.USE_API_KEY: "Or use an API key: %massive_login --api-key-env {names}.",
    Step.RAISE_TIMEOUT: "Raise it: %config MassiveMagics.timeout = <seconds>.",
    Step.WAIT_THEN_LOGIN: "Then run %massive_login once; every attempt extends the lock.",
    Step.USE_HTTPS: "Use an https:// URL, or %massive_login --allow-http if you must.",
    Step.SET_API_KEY: "Set a current API key in {names}, then run %massive_login.",
    Step.SET_CACHE_DIR: "Set {names} (or %config MassiveMagics.cache_dir) to a directory "
    "only you can write.",
    Step.CONNECT_SERVER: "Log in to it with %massive_login --url {names}.",
    Step.INSTALL_EXTRA: "Install it with %pip install 'massive-magic[{names}]'.",
    Step.RECORD_SNAPSHOT: "Record it with %massive_snapshots record (or auto) while online.",
    Step.ALLOW_OLDER: "Or allow older ones: %massive_snapshots replay --max-age 30d.",
    Step.LEAVE_REPLAY: "Run %massive_snapshots auto (or off), then open the picker again.",
    Step.SET_SNAPSHOT_DIR: "Name it with %massive_snapshots DIR (or set {names}).",
}

_NO_VALUE = "—"  # dropdown entry meaning "not set: the card's default applies"
_LABEL_LAYOUT = {"width": "11em"}


# --------------------------------------------------------------------------- helpers


def _plain(obj: Any) -> dict[str, Any]:
    """Card metadata (``Client.card_info`` returns a dict) as a plain dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"Expected card metadata as a mapping, got {type(obj).__name__}")


def _records(cards: Any) -> list[dict[str, Any]]:
    """``Client.cards()`` as a list of dicts (it may be a list or a DataFrame)."""
    to_dict = getattr(cards, "to_dict", None)
    if callable(to_dict) and hasattr(cards, "columns"):
        return [dict(r) for r in to_dict(orient="records")]
    return [_plain(c) for c in cards]


def _collection_name(card: Mapping[str, Any]) -> str:
    collection = card.get("collection")
    if isinstance(collection, Mapping):
        return str(collection.get("name") or "")
    if isinstance(collection, str):
        return collection
    name = card.get("collection_name")
    return str(name) if name else ""


def _short(exc: BaseException) -> str:
    """One short line for the output area: what happened, never a traceback."""
    full = render(exc, PICKER_WORDS).strip()
    text = full.splitlines()[0] if full else ""
    if len(text) > 300:
        text = text[:297] + "…"
    if isinstance(exc, (MassiveError, ValueError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


class _Input:
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
        self.hint.value = f"<small style='color:#777'>{html.escape(text)}</small>" if text else ""

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


class _NumberInput(_Input):
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


class _NumberRangeInput(_Input):
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


class _DateInput(_Input):
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


class _DateRangeInput(_Input):
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


class _ChoiceInput(_Input):
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


class _MultiChoiceInput(_Input):
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


_INPUTS: dict[str, type[_Input]] = {
    "choice": _ChoiceInput,
    "multi-choice": _MultiChoiceInput,
    "date": _DateInput,
    "date-range": _DateRangeInput,
    "number": _NumberInput,
    "number-range": _NumberRangeInput,
    "bool": _BoolInput,
    "text": _Input,
}


def _make_input(decl: Mapping[str, Any] | ParameterDecl) -> _Input:
    """The input that fits a declaration (``ParameterDecl.widget`` decides which)."""
    parsed = ParameterDecl.from_json(decl)
    return _INPUTS[parsed.widget](parsed)


# --------------------------------------------------------------------------- the widget


class CardPicker(widgets.VBox):
    """Search the user's cards, set parameters, load one, and copy the code that does it.

    ``.df`` is the last loaded frame, ``.code`` the ``%%massive_card`` cell that
    reproduces it (both None before the first load); ``.cards`` the card list.
    With a ``namespace`` (the notebook's, as the magics and :func:`picker` pass),
    Load also stores the frame there under ``variable``, the name the code shows.
    """

    #: The list shows at most this many matches; the status line says how many there are.
    max_results = 500

    def __init__(
        self,
        client: Client,
        *,
        set_next_input: Callable[[str], Any] | None = None,
        variable: str = DEFAULT_VARIABLE,
        preview_rows: int = PREVIEW_ROWS,
        namespace: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.variable = variable
        self.namespace = namespace
        self.preview_rows = preview_rows
        self.df: pd.DataFrame | None = None
        self.code: str | None = None
        self.card: dict[str, Any] | None = None
        self.cards: list[dict[str, Any]] = []
        self._set_next_input = set_next_input
        self._inputs: list[_Input] = []
        self._quiet = False

        self.search = widgets.Text(
            placeholder="Search cards by name or collection",
            description="Search",
            continuous_update=True,
            layout={"width": "40em"},
        )
        self.results = widgets.Select(options=[], rows=8, layout={"width": "40em"})
        self.description = widgets.HTML()
        self.parameters = widgets.VBox()
        self.load_button = widgets.Button(
            description="Load", button_style="primary", icon="download", disabled=True
        )
        self.copy_button = widgets.Button(description="Copy as code", icon="copy", disabled=True)
        self.status = widgets.HTML()
        self.code_box = widgets.Textarea(
            placeholder="The %%massive_card cell for the selected card appears here.",
            rows=4,
            layout={"width": "40em"},
        )
        self.output = widgets.Output(layout={"border": "1px solid #ddd", "min_height": "2em"})
        # What a load prints (the client's progress bar, warnings) is captured into a
        # fresh Output each time, kept apart from `output`, which only Python writes:
        # an Output the front end captures into syncs its own copy of `outputs` back
        # after the callback and would overwrite the table set from here.
        self.progress = widgets.VBox()
        for name, widget in [
            ("search", self.search),
            ("results", self.results),
            ("description", self.description),
            ("load", self.load_button),
            ("copy", self.copy_button),
            ("status", self.status),
            ("code", self.code_box),
            ("output", self.output),
            ("progress", self.progress),
        ]:
            widget.add_class(f"massive-picker-{name}")

        super().__init__(
            [
                self.search,
                self.results,
                self.description,
                self.parameters,
                widgets.HBox([self.load_button, self.copy_button, self.status]),
                self.code_box,
                self.progress,
                self.output,
            ]
        )
        self.add_class("massive-picker")

        self.search.observe(self._on_search, names="value")
        self.results.observe(self._on_result, names="value")
        self.load_button.on_click(self._on_load)
        self.copy_button.on_click(self._on_copy)
        self._fetch_cards()

    # ---- public API

    @property
    def selected(self) -> int | None:
        """The id of the selected card, or None."""
        return None if self.card is None else int(self.card["id"])

    @property
    def params(self) -> dict[str, Any]:
        """The parameter values that are set, by slug (what Load sends)."""
        values = {}
        for item in self._inputs:
            value = item.get()
            if value is not None:
                values[item.name] = value
        return values

    def filter(self, text: str) -> list[tuple[str, int]]:
        """The (label, id) entries whose name, collection or id contain every word of ``text``."""
        words = text.lower().split()
        found = []
        for card in self.cards:
            haystack = f"{card.get('name', '')} {_collection_name(card)} {card.get('id')}".lower()
            if all(word in haystack for word in words):
                found.append((self._label(card), int(card["id"])))
        return found

    def select(self, ref: int | str) -> dict[str, Any]:
        """Show card ``ref``'s description and parameter inputs; returns its metadata."""
        try:
            ident = card_id(ref)
            info = _plain(self.client.card_info(ident))
        except Exception as exc:
            self._show_error(exc)
            raise
        self._show_card(info)
        return info

    def set_params(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Fill parameter inputs by slug or display name (None clears one)."""
        merged = {**(values or {}), **kwargs}
        by_key = {}
        for item in self._inputs:
            by_key[item.name.lower()] = item
            by_key[item.label.lower()] = item
        for key, value in merged.items():
            found = by_key.get(str(key).lower())
            if found is None:
                known = ", ".join(i.name for i in self._inputs) or "none"
                raise ValueError(f"The card has no parameter {key!r} (it has: {known}).")
            found.set(value)
        self._refresh_code()

    def load(self) -> pd.DataFrame:
        """Fetch the selected card with the current parameters; show its first rows.

        Sets ``.df`` and ``.code`` (and ``namespace[variable]`` when the picker has a
        namespace). Errors are shown in the output area and raised.
        """
        if self.card is None:
            exc = ValueError("Select a card first.")
            self._show_error(exc)
            raise exc
        ident, params = int(self.card["id"]), self.params
        code = format_cell(ident, params, variable=self.variable)
        self.load_button.disabled = True
        self._set_status(f"Loading card {ident}…")
        self.output.outputs = ()
        failure: Exception | None = None
        # The client's progress bar renders in `capture`. The try sits inside the `with`:
        # an exception leaving an Output context in IPython is printed as a full
        # traceback and swallowed.
        capture = widgets.Output()
        self._clear_progress()
        self.progress.children = (capture,)
        with capture:
            try:
                df = self.client.card(ident, params=params or None)
            except Exception as exc:
                failure = exc
        self.load_button.disabled = False
        if failure is not None:
            self._show_error(failure)
            raise failure
        self.df, self.code = df, code
        if self.namespace is not None:
            self.namespace[self.variable] = df
        self._show_frame(df)
        return df

    def copy_code(self) -> str:
        """Put the ``%%massive_card`` cell into the next input cell (where the front end
        allows it) and into the code box; returns the code."""
        code = self._current_code()
        if code is None:
            raise ValueError("Select a card first.")
        self.code_box.value = code
        if self._set_next_input is not None:
            self._set_next_input(code)
            self._set_status(
                "Code below; it is also inserted as a new cell (in Jupyter: after the next "
                "cell you run)."
            )
        else:
            self._set_status("Code below: select it and copy (Ctrl+C).")
        return code

    # ---- callbacks (never raise: the widget must stay alive)

    def _on_search(self, change: Mapping[str, Any]) -> None:
        self._guard(lambda: self._update_results(str(change["new"])))

    def _on_result(self, change: Mapping[str, Any]) -> None:
        new = change["new"]
        if new is not None and new != self.selected and not self._quiet:
            self._guard(lambda: self.select(new))

    def _on_load(self, _button: widgets.Button) -> None:
        self._guard(self.load)

    def _on_copy(self, _button: widgets.Button) -> None:
        self._guard(self.copy_code)

    def _on_param(self, _change: Any) -> None:
        self._guard(self._refresh_code)

    def _guard(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:
            self._show_error(exc)

    # ---- internals

    def _fetch_cards(self) -> None:
        try:
            self.cards = _records(self.client.cards())
        except Exception as exc:
            self.cards = []
            self._show_error(exc)
        self._update_results(self.search.value)

    def _label(self, card: Mapping[str, Any]) -> str:
        collection = _collection_name(card)
        where = f"  ·  {collection}" if collection else ""
        return f"{card.get('name', '?')}{where}  (#{card.get('id')})"

    def _update_results(self, text: str) -> None:
        found = self.filter(text)
        options = found[: self.max_results]  # a huge <select> makes the front end sluggish
        keep = self.results.value if self.results.value in [v for _, v in options] else None
        self._quiet = True  # a Select picks its first option when options change: not a choice
        try:
            self.results.options = options
            self.results.value = keep
            self.results.rows = max(3, min(8, len(options)))
        finally:
            self._quiet = False
        count = len(found)
        verb = "card matches" if count == 1 else "cards match"
        message = f"{count:,} {verb}" if text else ""
        if count > len(options):
            message = f"{message or f'{count:,} cards'}; showing {len(options):,}, type to narrow"
        self._set_status(message)

    def _show_card(self, info: dict[str, Any]) -> None:
        self.card = info
        parts = [f"<b>{html.escape(str(info.get('name') or ''))}</b> (#{info.get('id')})"]
        collection = _collection_name(info)
        if collection:
            parts.append(f" in <i>{html.escape(collection)}</i>")
        text = info.get("description") or "No description."
        parts.append(f"<br>{html.escape(str(text))}")
        self.description.value = "".join(parts)
        self._inputs = [_make_input(d) for d in info.get("parameters") or []]
        for item in self._inputs:
            item.observe(self._on_param)
        self.parameters.children = [item.row for item in self._inputs]
        self.load_button.disabled = False
        self.copy_button.disabled = False
        self.output.outputs = ()
        self._clear_progress()
        self._set_status("")
        self._refresh_code()
        if self.results.value != info.get("id") and info.get("id") in [
            v for _, v in self.results.options
        ]:
            self.results.value = info["id"]

    def _clear_progress(self) -> None:
        old, self.progress.children = self.progress.children, ()
        for widget in old:
            widget.close()

    def _current_code(self) -> str | None:
        if self.card is None:
            return None
        return format_cell(int(self.card["id"]), self.params, variable=self.variable)

    def _refresh_code(self) -> None:
        self.code_box.value = self._current_code() or ""

    def _set_status(self, text: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.status.value = (
            f"<span style='color:{color}'>{html.escape(text)}</span>" if text else ""
        )

    def _show_error(self, exc: BaseException) -> None:
        message = _short(exc)
        self._set_status("Error", error=True)
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {
                    "text/plain": f"Error: {message}",
                    "text/html": (
                        "<div class='massive-picker-error' style='color:#b00020'>"
                        f"<b>Error:</b> {html.escape(message)}</div>"
                    ),
                },
                "metadata": {},
            },
        )

    def _show_frame(self, df: pd.DataFrame) -> None:
        head = df.head(self.preview_rows)
        shown = f"first {len(head)} of {len(df):,}" if len(df) > len(head) else f"all {len(df):,}"
        stored = f" Stored in {self.variable}." if self.namespace is not None else ""
        self._set_status(f"Loaded {shown} rows × {len(df.columns)} columns.{stored}")
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/plain": repr(head), "text/html": head.to_html(max_cols=30)},
                "metadata": {},
            },
        )


def picker(
    client: Client | None = None,
    *,
    set_next_input: Callable[[str], Any] | None = None,
    namespace: MutableMapping[str, Any] | None = None,
) -> CardPicker:
    """A :class:`CardPicker` on ``client``.

    Without a client, in a notebook where ``%massive_login`` ran, the picker uses
    that login (and, unless given, the notebook's namespace and next-cell hook);
    elsewhere a ``Client()`` from the environment.
    """
    if client is None:
        from .magics import notebook_login  # only magics.py talks to IPython

        found = notebook_login()
        if found is not None:
            client = found.client
            namespace = found.namespace if namespace is None else namespace
            set_next_input = set_next_input or found.set_next_input
    if client is None:
        from .client import Client

        client = Client()
    return CardPicker(client, set_next_input=set_next_input, namespace=namespace)
