"""What the picker shows: its words, and its lines as HTML; pure, no widgets, no HTTP.

Next steps in the picker's words (``PICKER_WORDS``, see ``errors.render``), the
card list's rows and labels, the selected card's heading, its link line, the
status line and the output area's error and preview bundles. ``card_picker.py``
puts them into its widgets; every text from Metabase is escaped here, and a link is
only made of an ``http(s)`` URL.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import MassiveError, Step, render

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PICKER_WORDS",
    "card_heading",
    "card_label",
    "card_records",
    "collection_name",
    "error_bundle",
    "frame_bundle",
    "link_line",
    "note_line",
    "plain_card",
    "short_error",
    "status_line",
]

_ERROR_COLOR = "#b00020"

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


def short_error(exc: BaseException) -> str:
    """One short line for the output area: what happened, never a traceback."""
    full = render(exc, PICKER_WORDS).strip()
    text = full.splitlines()[0] if full else ""
    if len(text) > 300:
        text = text[:297] + "…"
    if isinstance(exc, (MassiveError, ValueError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def plain_card(obj: Any) -> dict[str, Any]:
    """Card metadata (``Client.card_info`` returns a dict) as a plain dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"Expected card metadata as a mapping, got {type(obj).__name__}")


def card_records(cards: Any) -> list[dict[str, Any]]:
    """``Client.cards()`` as a list of dicts (it may be a list or a DataFrame)."""
    to_dict = getattr(cards, "to_dict", None)
    if callable(to_dict) and hasattr(cards, "columns"):
        return [dict(r) for r in to_dict(orient="records")]
    return [plain_card(c) for c in cards]


def collection_name(card: Mapping[str, Any]) -> str:
    """The card's collection name ("" when it has none)."""
    collection = card.get("collection")
    if isinstance(collection, Mapping):
        return str(collection.get("name") or "")
    if isinstance(collection, str):
        return collection
    name = card.get("collection_name")
    return str(name) if name else ""


def card_label(card: Mapping[str, Any]) -> str:
    """``"Daily earnings  ·  Partner reports  (#1)"``: one entry of the card list."""
    collection = collection_name(card)
    where = f"  ·  {collection}" if collection else ""
    return f"{card.get('name', '?')}{where}  (#{card.get('id')})"


def card_heading(info: Mapping[str, Any]) -> str:
    """The selected card's name, id, collection and description as HTML."""
    parts = [f"<b>{html.escape(str(info.get('name') or ''))}</b> (#{info.get('id')})"]
    collection = collection_name(info)
    if collection:
        parts.append(f" in <i>{html.escape(collection)}</i>")
    text = info.get("description") or "No description."
    parts.append(f"<br>{html.escape(str(text))}")
    return "".join(parts)


def link_line(url: str | None) -> str:
    """The card's Metabase link as an HTML line ("" without one)."""
    if not url:
        return ""
    if not url.startswith(("https://", "http://")):
        return note_line(url)
    href = html.escape(url, quote=True)
    return (
        f"<a href='{href}' target='_blank' rel='noopener noreferrer' "
        f"title='Open in Metabase with these filters'>{html.escape(url)}</a>"
    )


def note_line(text: str) -> str:
    """A quiet grey note ("not set", "No link: ...")."""
    return f"<small style='color:#777'>{html.escape(text)}</small>"


def status_line(text: str, *, error: bool = False) -> str:
    """The status line beside the buttons ("" for no status)."""
    color = _ERROR_COLOR if error else "#555"
    return f"<span style='color:{color}'>{html.escape(text)}</span>" if text else ""


def error_bundle(message: str) -> dict[str, Any]:
    """The output area's display of a short error message."""
    return {
        "output_type": "display_data",
        "data": {
            "text/plain": f"Error: {message}",
            "text/html": (
                f"<div class='massive-picker-error' style='color:{_ERROR_COLOR}'>"
                f"<b>Error:</b> {html.escape(message)}</div>"
            ),
        },
        "metadata": {},
    }


def frame_bundle(head: pd.DataFrame) -> dict[str, Any]:
    """The output area's display of a frame's first rows."""
    return {
        "output_type": "display_data",
        "data": {"text/plain": repr(head), "text/html": head.to_html(max_cols=30)},
        "metadata": {},
    }
