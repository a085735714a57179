"""CardPicker: browse, parametrise and load cards from a notebook, standard ipywidgets only.

``%massive_cards`` (or ``massive_magic.picker()``) shows::

    [search box                    ]
    [list of matching cards        ]
    description of the selected card
    its Metabase link, with the filters the inputs set
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

from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .cellparams import DEFAULT_VARIABLE, format_cell
from .errors import ParameterError
from .links import card_url, parse_card_url
from .parameters import build_parameters
from .picker_inputs import ParameterInput, make_input
from .picker_view import (
    PICKER_WORDS,
    card_heading,
    card_label,
    card_records,
    collection_name,
    error_bundle,
    frame_bundle,
    link_line,
    note_line,
    plain_card,
    short_error,
    status_line,
)
from .refs import card_id

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

# PICKER_WORDS lives in picker_view.py (the picker's words); it stays importable from here.
__all__ = ["PICKER_WORDS", "CardPicker", "format_cell", "picker"]

#: How many rows of a loaded frame the output area shows.
PREVIEW_ROWS = 10

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
        self._inputs: list[ParameterInput] = []
        self._quiet = False

        self.search = widgets.Text(
            placeholder="Search cards by name or collection",
            description="Search",
            continuous_update=True,
            layout={"width": "40em"},
        )
        self.results = widgets.Select(options=[], rows=8, layout={"width": "40em"})
        self.description = widgets.HTML()
        self.link = widgets.HTML()
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
            ("link", self.link),
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
                self.link,
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

    @property
    def url(self) -> str | None:
        """The selected card's Metabase link with the filters Load would send; None before
        a selection. Raises ParameterError when an input holds a value the card refuses.

        The filters are ``parameters.build_parameters`` of :attr:`params`, keyed in the
        link by slug as in Metabase's own links, so the link opens the same data.
        """
        if self.card is None:
            return None
        info, values = self.card, self.params
        decls = {item.name: item.decl for item in self._inputs}
        built = build_parameters(list(decls.values()), values, owner=f"Card {info['id']}")
        # card_info's declarations carry no parameter id or target to find a slug by,
        # so each parameter object names its slug for the link.
        keyed = [
            {**param, "slug": decls[key].slug or key}
            for param, key in zip(built, values, strict=True)
        ]
        kind = info.get("type") if info.get("type") in ("model", "metric") else "question"
        return card_url(
            self.client.url,
            int(info["id"]),
            info.get("name"),
            keyed,
            declarations=info.get("parameters") or [],
            kind=str(kind),
        )

    def filter(self, text: str) -> list[tuple[str, int]]:
        """The (label, id) entries whose name, collection or id contain every word of ``text``."""
        words = text.lower().split()
        found = []
        for card in self.cards:
            haystack = f"{card.get('name', '')} {collection_name(card)} {card.get('id')}".lower()
            if all(word in haystack for word in words):
                found.append((card_label(card), int(card["id"])))
        return found

    def select(self, ref: int | str) -> dict[str, Any]:
        """Show card ``ref``'s description and parameter inputs; returns its metadata."""
        try:
            ident = card_id(ref, server=self.client.url)
            info = plain_card(self.client.card_info(ident))
        except Exception as exc:
            self._show_error(exc)
            raise
        self._show_card(info)
        return info

    def open_link(self, link: str) -> dict[str, Any]:
        """A card's Metabase link (as pasted into the search box): select the card and
        fill in the filters its query string holds (``?country=DE&country=GB``)."""
        _, ident, values = parse_card_url(link, server=self.client.url)
        self._update_results(str(ident), only=ident)
        info = self.select(ident)
        if values:
            self.set_params(values)
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
        self._refresh_selection()

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
        text = str(change["new"]).strip()
        if _is_link(text):
            self._guard(lambda: self.open_link(text))
        else:
            self._guard(lambda: self._update_results(text))

    def _on_result(self, change: Mapping[str, Any]) -> None:
        new = change["new"]
        if new is not None and new != self.selected and not self._quiet:
            self._guard(lambda: self.select(new))

    def _on_load(self, _button: widgets.Button) -> None:
        self._guard(self.load)

    def _on_copy(self, _button: widgets.Button) -> None:
        self._guard(self.copy_code)

    def _on_param(self, _change: Any) -> None:
        self._guard(self._refresh_selection)

    def _guard(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:
            self._show_error(exc)

    # ---- internals

    def _fetch_cards(self) -> None:
        try:
            self.cards = card_records(self.client.cards())
        except Exception as exc:
            self.cards = []
            self._show_error(exc)
        self._update_results(self.search.value)

    def _update_results(self, text: str, only: int | None = None) -> None:
        found = self.filter(text)
        if only is not None:  # a pasted link names one card
            found = [entry for entry in found if entry[1] == only]
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
        self.description.value = card_heading(info)
        self._inputs = [make_input(d) for d in info.get("parameters") or []]
        for item in self._inputs:
            item.observe(self._on_param)
        self.parameters.children = [item.row for item in self._inputs]
        self.load_button.disabled = False
        self.copy_button.disabled = False
        self.output.outputs = ()
        self._clear_progress()
        self._set_status("")
        self._refresh_selection()
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

    def _refresh_selection(self) -> None:
        """The code box and the link line follow the inputs."""
        self.code_box.value = self._current_code() or ""
        try:
            self.link.value = link_line(self.url)
        except ParameterError as exc:  # Load would say the same; the widget lives on
            self.link.value = note_line(f"No link: {short_error(exc)}")

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.value = status_line(text, error=error)

    def _show_error(self, exc: BaseException) -> None:
        message = short_error(exc)
        self._set_status("Error", error=True)
        self.output.outputs = (error_bundle(message),)

    def _show_frame(self, df: pd.DataFrame) -> None:
        head = df.head(self.preview_rows)
        shown = f"first {len(head)} of {len(df):,}" if len(df) > len(head) else f"all {len(df):,}"
        stored = f" Stored in {self.variable}." if self.namespace is not None else ""
        self._set_status(f"Loaded {shown} rows × {len(df.columns)} columns.{stored}")
        self.output.outputs = (frame_bundle(head),)


def _is_link(text: str) -> bool:
    """Whether the search box holds a card's link rather than words to search for."""
    return text.startswith(("http://", "https://", "/question/", "/model/"))


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
