"""What the magics print: next steps in the notebook's words, and the one-line summaries.

Pure text, no IPython: the magics, the picker and tests share it, and a wording
change happens here only.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .errors import MassiveWarning, Step

__all__ = [
    "INTERRUPTED",
    "MAGIC_WORDS",
    "NOT_LOGGED_IN",
    "PlainWarnings",
    "card_name",
    "describe_dashboard",
    "describe_frame",
    "describe_login",
]

NOT_LOGGED_IN = "Not logged in. Run %massive_login first (or %massive_login --sandbox to try)."
#: What an interrupted magic says (Ctrl-C, or Jupyter's interrupt button).
INTERRUPTED = "Interrupted; nothing was stored."

#: What to do next, in the notebook's words: the magics and %config, never the Python API.
MAGIC_WORDS: Mapping[Step, str] = {
    Step.LIST_CARDS: "Run %massive_cards to see the cards you can read.",
    Step.SHOW_PARAMETERS: "%massive_cards shows its parameters.",
    Step.GIVE_PARAMETER: "Give {names} a value in the %%massive_card cell body (name = value).",
    Step.REFRESH: "Run it again with --refresh.",
    Step.READ_DASHBOARD: "Read the whole dashboard with %massive_dashboard {ref}.",
    Step.READ_CARD: "Use %massive_card {ref} for it.",
    Step.LOGIN: "Run %massive_login --force.",
    Step.SET_USER: "Pass --user EMAIL to %massive_login, or set {names}.",
    Step.SET_PASSWORD: "Set {names} in the kernel's environment, or run %massive_login "
    "interactively.",
    Step.USE_API_KEY: "Or use an API key: set {names}, or name your variable with "
    "%massive_login --api-key-env VAR.",
    Step.RAISE_TIMEOUT: "Raise it: %config MassiveMagics.timeout = <seconds>.",
    Step.WAIT_THEN_LOGIN: "Then run %massive_login once; every attempt extends the lock.",
    Step.USE_HTTPS: "Use an https:// URL, or %massive_login --allow-http if you must.",
    Step.SET_API_KEY: "Set a current API key in {names}, then run %massive_login.",
    Step.SET_CACHE_DIR: "Set %config MassiveMagics.cache_dir (or {names}) to a directory "
    "only you can write.",
    Step.CONNECT_SERVER: "Log in to it with %massive_login --url {names}.",
    Step.INSTALL_EXTRA: "Install it with %pip install 'massive-magic[{names}]'.",
}


def describe_login(info: Any) -> str:
    """One line: who is logged in where, and until when."""
    who = f"Logged in to {info.url} as {info.username}"
    if getattr(info, "auth", "session") == "api_key":
        return f"{who} with an API key (no session to expire)."
    expires = info.expires_at
    until = f"{expires:%Y-%m-%d %H:%M} UTC" if expires is not None else "the server ends it"
    reused = " (cached session)" if info.reused else ""
    return f"{who}; session valid until {until}{reused}."


def card_name(df: Any) -> str:
    """The card's name for the summary line, from the frame's provenance.

    ``Client.card`` looks the name up alongside the query; only when that lookup
    failed is it missing, and then the id stands in (no second lookup). An Arrow
    table keeps the provenance as JSON in its schema metadata.
    """
    schema: Any = getattr(df, "schema", None)
    if hasattr(schema, "metadata"):  # a pyarrow.Table: the provenance is JSON in its metadata
        meta = json.loads((schema.metadata or {}).get(b"massive") or "{}")
    else:
        meta = df.attrs.get("massive") or {}
    return str(meta["name"]) if meta.get("name") else f"card {meta['card_id']}"


def describe_frame(var: str, df: Any, name: str, seconds: float) -> str:
    """``daily: 1,234 rows x 5 columns from 'Daily earnings' in 0.42 s``."""
    rows, cols = df.shape
    return f"{var}: {rows:,} rows x {cols} columns from {name!r} in {seconds:.2f} s"


def describe_dashboard(var: str, result: Any, seconds: float) -> str:
    """``overview: 2 of 3 cards from 'Partner overview' in 0.31 s (failed: 'Payouts')``."""
    total = len(result) + len(result.errors)
    failed = f" (failed: {', '.join(map(repr, result.errors))})" if result.errors else ""
    return f"{var}: {len(result)} of {total} cards from {result.name!r} in {seconds:.2f} s{failed}"


class PlainWarnings:
    """``warnings.formatwarning`` while the extension is loaded.

    A :class:`MassiveWarning` is shown as its message alone: an analyst has no use
    for our module path and source line. Every other warning keeps the format it
    had. Only the text changes, so filters, ``catch_warnings`` and pytest see the
    warnings as before.
    """

    def __init__(self, original: Callable[..., str]) -> None:
        self.original = original
        self.active = True

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        line: str | None = None,
    ) -> str:
        if self.active and issubclass(category, MassiveWarning):
            return f"{message}\n"
        return self.original(message, category, filename, lineno, line)

    def remove(self) -> None:
        """Restore the formatter found at load (or step aside if another wraps this one)."""
        self.active = False
        if warnings.formatwarning is self:
            warnings.formatwarning = self.original
