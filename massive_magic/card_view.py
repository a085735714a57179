"""A card's facts for people: an HTML table for notebooks, plain text for terminals.

Pure rendering (no HTTP, no IPython) of the mapping ``Client.card_info`` returns.
Keys read, all optional except ``id``:

- ``id``, ``name``, ``description``, ``collection`` (a name), ``type``
  (``question``/``model``/``metric``);
- ``url``: the card's Metabase link (``links.card_url``); without it, ``server=``
  (the session's base URL) makes one;
- ``updated_at``: ISO timestamp of the last change; ``last_edited_by``: a name, or
  Metabase's ``last-edit-info`` mapping (``first_name``, ``last_name``, ``email``,
  ``timestamp``); :func:`edit_facts` reads both from ``GET /api/card/:id``;
- ``parameters``: mappings with ``slug``, ``name``, ``type``, ``default``,
  ``required``, ``values`` (the static list);
- ``columns``: mappings with ``name``, ``display_name``, ``type`` (Metabase's) and
  optionally ``dtype`` (the pandas dtype; else :func:`column_dtypes` works it out
  with the type table in ``frames``); ``results_timezone`` if known.

Every text from Metabase is escaped (``html.escape``); a link is only made of an
``http(s)`` URL.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .links import card_url, edited_at

__all__ = [
    "CardInfoView",
    "column_dtypes",
    "edit_facts",
    "editor_name",
    "render_card_info_html",
    "render_card_info_text",
]

_MAX_VALUES = 12  # allowed values shown per parameter before "… (+N more)"
_UNKNOWN_ZONE = "<results timezone>"


# -- facts ---------------------------------------------------------------------------


def edit_facts(card: Mapping[str, Any]) -> dict[str, Any]:
    """``{"updated_at", "last_edited_by"}`` from a ``GET /api/card/:id`` answer.

    The editor is a display name (first and last name, else the e-mail); the time
    is ``last-edit-info.timestamp``, else ``updated_at``.
    """
    info = card.get("last-edit-info")
    who = editor_name(info) if isinstance(info, Mapping) else ""
    return {"updated_at": edited_at(card), "last_edited_by": who or None}


def editor_name(who: Any) -> str:
    """``"Ana Ruiz"`` from a name or a ``last-edit-info`` mapping; ``""`` if unknown."""
    if isinstance(who, str):
        return who.strip()
    if not isinstance(who, Mapping):
        return ""
    full = " ".join(str(who[k]).strip() for k in ("first_name", "last_name") if who.get(k))
    return full or str(who.get("email") or "").strip()


def column_dtypes(
    columns: Sequence[Mapping[str, Any]], results_timezone: str | None = None
) -> list[str]:
    """The pandas dtype each column becomes, from the one type table (``frames``).

    Works out a zero-row frame of the columns. Date-times are zone-aware in the
    results timezone when the values carry offsets; without ``results_timezone`` the
    zone is shown as ``<results timezone>``. Unknown types are ``object``.
    """
    if not columns:
        return []
    import pandas as pd

    from .frames import FrameBuilder

    cols = [
        {
            "name": col.get("name") or f"column_{i}",
            "display_name": col.get("display_name"),
            "base_type": col.get("type") or col.get("base_type") or "type/*",
            "effective_type": col.get("type") or col.get("effective_type"),
        }
        for i, col in enumerate(columns)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unknown type is shown as object here
        frame = FrameBuilder(cols, results_timezone=results_timezone or "UTC").build()
    names: list[str] = []
    for dtype in frame.dtypes:
        # str() of pandas' Arrow-backed string dtype is just "string".
        name = f"string[{dtype.storage}]" if isinstance(dtype, pd.StringDtype) else str(dtype)
        if results_timezone is None and name.endswith(", UTC]"):
            name = name[: -len("UTC]")] + _UNKNOWN_ZONE + "]"
        names.append(name)
    return names


# -- shared formatting ---------------------------------------------------------------


def _when(value: Any) -> str:
    """``"2024-04-30 14:02 UTC"`` from an ISO timestamp; the text itself if unparsable."""
    if not value:
        return ""
    text = str(value).strip()
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    shown = stamp.strftime("%Y-%m-%d %H:%M")
    if stamp.utcoffset() is None:
        return shown
    if stamp.utcoffset() == dt.timedelta(0):
        return shown + " UTC"
    return shown + stamp.strftime(" %z")


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _values_text(values: Any) -> str:
    if not isinstance(values, (list, tuple)) or not values:
        return ""
    shown = ", ".join(_value_text(v) for v in values[:_MAX_VALUES])
    more = len(values) - _MAX_VALUES
    return shown + (f", … (+{more} more)" if more > 0 else "")


def _url(info: Mapping[str, Any], server: str | None) -> str:
    url = info.get("url")
    if url:
        return str(url)
    if server and info.get("id") is not None:
        kind = str(info.get("type") or "question")
        kind = kind if kind in ("question", "model", "metric") else "question"
        return card_url(server, int(info["id"]), info.get("name"), kind=kind)
    return ""


def _facts(info: Mapping[str, Any], server: str | None) -> list[tuple[str, str]]:
    """(label, text) rows of the summary, in display order, empty ones left out."""
    who = editor_name(info.get("last_edited_by"))
    when = _when(info.get("updated_at"))
    edited = " on ".join(part for part in (who, when) if part)
    rows = [
        ("ID", _value_text(info.get("id"))),
        ("Type", _value_text(info.get("type"))),
        ("Collection", _value_text(info.get("collection"))),
        ("Last edited", ("by " + edited) if who else edited),
        ("Open in Metabase", _url(info, server)),
    ]
    return [(label, text) for label, text in rows if text]


_PARAM_HEADERS = ("Slug", "Name", "Type", "Default", "Required", "Allowed values")
_COLUMN_HEADERS = ("Column", "Display name", "Metabase type", "pandas dtype")


def _param_rows(info: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            _value_text(p.get("slug")),
            _value_text(p.get("name")),
            _value_text(p.get("type")),
            _value_text(p.get("default")),
            "yes" if p.get("required") else "no",
            _values_text(p.get("values")),
        )
        for p in info.get("parameters") or []
    ]


def _column_rows(info: Mapping[str, Any]) -> list[tuple[str, ...]]:
    columns = list(info.get("columns") or [])
    if any(not col.get("dtype") for col in columns):
        worked = column_dtypes(columns, info.get("results_timezone"))
    else:
        worked = [""] * len(columns)
    return [
        (
            _value_text(col.get("name")),
            _value_text(col.get("display_name")),
            _value_text(col.get("type")),
            _value_text(col.get("dtype") or dtype),
        )
        for col, dtype in zip(columns, worked, strict=True)
    ]


def _title(info: Mapping[str, Any]) -> str:
    name = _value_text(info.get("name")) or "(no name)"
    return f"{name} (card {_value_text(info.get('id'))})"


# -- HTML ----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(css: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _html_link(url: str) -> str:
    if url.lower().startswith(("https://", "http://")):
        return f'<a href="{_esc(url)}" target="_blank" rel="noopener">{_esc(url)}</a>'
    return _esc(url)  # not a web link: shown, never made clickable


def render_card_info_html(info: Mapping[str, Any], *, server: str | None = None) -> str:
    """The card's facts as HTML: a summary table, its parameters, its columns."""
    parts = [f'<div class="massive-card-info"><h4>{_esc(_title(info))}</h4>']
    description = _value_text(info.get("description"))
    if description:
        parts.append(f"<p>{_esc(description)}</p>")
    facts = "".join(
        f"<tr><th>{_esc(label)}</th><td>"
        + (_html_link(text) if label == "Open in Metabase" else _esc(text))
        + "</td></tr>"
        for label, text in _facts(info, server)
    )
    parts.append(f'<table class="massive-card-facts"><tbody>{facts}</tbody></table>')
    params = _param_rows(info)
    parts.append("<h5>Parameters</h5>")
    if params:
        parts.append(_html_table("massive-card-parameters", _PARAM_HEADERS, params))
    else:
        parts.append("<p>None.</p>")
    columns = _column_rows(info)
    parts.append("<h5>Columns</h5>")
    if columns:
        parts.append(_html_table("massive-card-columns", _COLUMN_HEADERS, columns))
    else:
        parts.append("<p>Not known until the card has run once in Metabase.</p>")
    parts.append("</div>")
    return "".join(parts)


# -- plain text ----------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = [list(headers), *[[_one_line(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def render_card_info_text(info: Mapping[str, Any], *, server: str | None = None) -> str:
    """The card's facts as aligned plain text, for a terminal or a log."""
    lines = [_title(info)]
    description = _value_text(info.get("description"))
    if description:
        lines.append(_one_line(description))
    facts = _facts(info, server)
    if facts:
        width = max(len(label) for label, _ in facts) + 1
        lines.append("")
        lines.extend(f"{(label + ':').ljust(width)}  {text}" for label, text in facts)
    params = _param_rows(info)
    lines += ["", "Parameters:" if params else "Parameters: none"]
    if params:
        lines.extend(_text_table(_PARAM_HEADERS, params))
    columns = _column_rows(info)
    lines += ["", "Columns:" if columns else "Columns: not known until the card has run"]
    if columns:
        lines.extend(_text_table(_COLUMN_HEADERS, columns))
    return "\n".join(lines) + "\n"


class CardInfoView:
    """What ``%massive_info`` displays: HTML in a notebook, aligned text in a terminal.

    IPython asks an object for every representation it has (``_repr_html_`` for
    ``text/html``, ``_repr_pretty_`` for ``text/plain``); the front end shows the
    richest one it can, so one display works in Jupyter and in a terminal alike.
    """

    def __init__(self, info: Mapping[str, Any], *, server: str | None = None) -> None:
        self.info = info
        self.server = server

    def _repr_html_(self) -> str:
        return render_card_info_html(self.info, server=self.server)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def __str__(self) -> str:
        return render_card_info_text(self.info, server=self.server).rstrip("\n")

    def __repr__(self) -> str:
        return str(self)
