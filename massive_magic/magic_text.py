"""What the magics print: next steps in the notebook's words, and the one-line summaries.

Pure text, no IPython: the magics, the picker and tests share it, and a wording
change happens here only.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ConfigError, MassiveWarning, Step

__all__ = [
    "AS_HELP",
    "INTERRUPTED",
    "MAGIC_WORDS",
    "NOT_LOGGED_IN",
    "OUTPUTS",
    "PlainWarnings",
    "Summary",
    "card_name",
    "describe_dashboard",
    "describe_frame",
    "describe_login",
    "describe_logout",
    "describe_snapshots",
    "frame_summary",
    "freshness",
    "snapshot_words",
]

_MODES = ("record", "replay", "auto", "off")

NOT_LOGGED_IN = "Not logged in. Run %massive_login first (or %massive_login --sandbox to try)."
#: What an interrupted magic says (Ctrl-C, or Jupyter's interrupt button).
INTERRUPTED = "Interrupted; nothing was stored."

#: What ``--as`` and ``MassiveMagics.output`` take (``outputs.OUTPUTS``, without importing it).
OUTPUTS = ("pandas", "arrow", "polars")
AS_HELP = (
    "pandas: a DataFrame (default: %%config MassiveMagics.output), arrow: a pyarrow Table, "
    "polars: a polars DataFrame."
)

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
    Step.RECORD_SNAPSHOT: "Record it with %massive_snapshots record (or auto) while online.",
    Step.ALLOW_OLDER: "Or allow older ones: %massive_snapshots replay --max-age 30d.",
    Step.LEAVE_REPLAY: "Run %massive_snapshots auto (or off) to read from Metabase.",
    Step.SET_SNAPSHOT_DIR: "Name it with %massive_snapshots DIR (or set {names}).",
}


def describe_login(info: Any) -> str:
    """One line: who is logged in where, and until when (in replay: that nobody is)."""
    if getattr(info, "auth", "session") == "replay":
        return str(info)
    who = f"Logged in to {info.url} as {info.username}"
    if getattr(info, "auth", "session") == "api_key":
        return f"{who} with an API key (no session to expire)."
    expires = info.expires_at
    until = f"{expires:%Y-%m-%d %H:%M} UTC" if expires is not None else "the server ends it"
    reused = " (cached session)" if info.reused else ""
    return f"{who}; session valid until {until}{reused}."


def describe_logout(url: str | None, *, offline: bool) -> str:
    """What ``%massive_logout`` prints; ``url`` None: nobody was logged in."""
    if url is None:
        return "Not logged in."
    return "Not logged in: snapshots were replayed." if offline else f"Logged out of {url}."


def card_name(df: Any) -> str:
    """The card's name for the summary line, from the frame's provenance.

    ``Client.card`` looks the name up alongside the query; only when that lookup
    failed is it missing, and then the id stands in (no second lookup). An Arrow
    table keeps the provenance as JSON in its schema metadata.
    """
    meta = provenance(df)
    return str(meta["name"]) if meta.get("name") else f"card {meta.get('card_id')}"


def provenance(result: Any) -> dict[str, Any]:
    """``attrs["massive"]`` of a DataFrame, or the same dict from a pyarrow Table's schema
    metadata (JSON); ``{}`` for a result that carries none (a polars frame)."""
    schema: Any = getattr(result, "schema", None)
    if hasattr(schema, "metadata"):  # a pyarrow.Table
        found = json.loads((schema.metadata or {}).get(b"massive") or "{}")
        return found if isinstance(found, dict) else {}
    attrs = getattr(result, "attrs", None)
    meta = attrs.get("massive") if isinstance(attrs, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def describe_frame(
    var: str,
    df: Any,
    name: str,
    seconds: float,
    now: dt.datetime | None = None,
    meta_from: Any = None,
) -> str:
    """``daily: 1,234 rows x 5 columns from 'Daily earnings' in 0.42 s``, and for a
    replayed frame ``, from a snapshot of 2026-11-02, 27 days old``."""
    rows, cols = df.shape
    text = f"{var}: {rows:,} rows x {cols} columns from {name!r} in {seconds:.2f} s"
    return text + freshness([df if meta_from is None else meta_from], now)


class Summary:
    """A summary line: plain text in a terminal, with a link in a notebook.

    Displayed, IPython offers both ``text/plain`` (``__repr__``) and ``text/html``
    (``_repr_html_``): Jupyter shows the link, a terminal the same words.
    """

    def __init__(self, text: str, link_text: str = "", url: str | None = None) -> None:
        self.text = text
        self.link_text = link_text
        self.url = url

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        words = html.escape(self.text)
        url = self.url or ""
        if self.link_text and url.lower().startswith(("https://", "http://")):
            shown = html.escape(self.link_text)
            link = f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{shown}</a>'
            words = words.replace(shown, link, 1)
        return f'<pre class="massive-summary">{words}</pre>'


def frame_summary(var: str, df: Any, seconds: float, meta_from: Any = None) -> Summary:
    """:func:`describe_frame`'s line, the card's name linked to ``attrs["massive"]["card_url"]``
    (the card with the parameters sent). ``meta_from``: what carries the provenance, when
    ``df`` cannot (a polars frame is made from an Arrow table that does)."""
    source = df if meta_from is None else meta_from
    name = card_name(source)
    text = describe_frame(var, df, name, seconds, meta_from=source)
    return Summary(text, repr(name), provenance(source).get("card_url"))


def describe_dashboard(
    var: str, result: Any, seconds: float, now: dt.datetime | None = None
) -> str:
    """``overview: 2 of 3 cards from 'Partner overview' in 0.31 s (failed: 'Payouts')``."""
    total = len(result) + len(result.errors)
    failed = f" (failed: {', '.join(map(repr, result.errors))})" if result.errors else ""
    text = f"{var}: {len(result)} of {total} cards from {result.name!r} in {seconds:.2f} s"
    return text + failed + freshness(list(result.values()), now)


def freshness(frames: Sequence[Any], now: dt.datetime | None = None) -> str:
    """``, from a snapshot of 2026-11-02, 27 days old`` for replayed frames (the oldest)."""
    replayed = [
        _moment(meta.get("fetched_at"))
        for meta in map(provenance, frames)
        if meta.get("source") == "snapshot"
    ]
    if not replayed:
        return ""
    if len(frames) == 1:
        what = "a snapshot of"
    elif len(replayed) == len(frames):
        what = "snapshots, the oldest of"
    else:
        what = f"snapshots ({len(replayed)} of {len(frames)} cards), the oldest of"
    known = [t for t in replayed if t is not None]
    if not known:
        return f", from {what.rsplit(',', 1)[0].removesuffix(' of')}"
    oldest = min(known)
    return f", from {what} {oldest:%Y-%m-%d}, {age_text(oldest, now)} old"


def age_text(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """How long ago ``moment`` was: ``27 days``, ``5 hours``, ``under a minute``."""
    return duration_text((now or dt.datetime.now(dt.timezone.utc)) - moment)


def duration_text(span: dt.timedelta) -> str:
    """``27 days``, ``1 day``, ``5 hours``, ``3 minutes``, ``under a minute`` (largest unit)."""
    seconds = max(span.total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = int(seconds // size)
        if count:
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "under a minute"


def _moment(text: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def describe_snapshots(
    mode: str,
    directory: Any,
    infos: Sequence[Any],
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
    *,
    ended: bool = False,
) -> str:
    """What ``%massive_snapshots`` prints: mode, directory, count, oldest and newest;
    ``ended``: the replay's client is gone (it never logged in)."""
    mode = str(getattr(mode, "value", mode))
    tail = " The replay's login ended: run %massive_login to read from Metabase." if ended else ""
    return _describe_snapshots(mode, directory, infos, max_age, now) + tail


def _describe_snapshots(
    mode: str,
    directory: Any,
    infos: Sequence[Any],
    max_age: dt.timedelta | None,
    now: dt.datetime | None,
) -> str:
    if mode == "off":
        where = f" (directory {directory})" if directory else ""
        return f"Snapshots are off{where}: cards are read from Metabase."
    limit = (
        f", at most {age_text(dt.datetime.now(dt.timezone.utc) - max_age)} old" if max_age else ""
    )
    head = f"Snapshots: {mode} in {directory}{limit}."
    if not infos:
        return head + " No snapshots there yet."
    oldest = min(i.recorded_at for i in infos)
    newest = max(i.recorded_at for i in infos)
    size = sum(i.size for i in infos)
    count = f"{len(infos)} snapshot{'s' if len(infos) != 1 else ''}"
    return (
        f"{head} {count} ({size / 1e6:.1f} MB): the oldest of {oldest:%Y-%m-%d %H:%M} UTC "
        f"({age_text(oldest, now)} old), the newest of {newest:%Y-%m-%d %H:%M} UTC "
        f"({age_text(newest, now)} old)."
    )


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


def snapshot_words(
    words: Sequence[str], max_age: str | None, current: tuple[Any, Any, Any]
) -> tuple[Any, Any, Any]:
    """``%massive_snapshots [MODE] [DIR] [--max-age AGE]`` applied to the current
    (directory, mode, max age); ``--max-age none`` lifts the limit."""
    directory, mode, age = current
    if words and words[0].strip().lower() in _MODES:
        mode, words = words[0].strip().lower(), words[1:]
    if len(words) > 1 or (words and words[0].strip().lower() in _MODES):
        raise ConfigError(
            f"Give a mode ({', '.join(_MODES)}) and then a directory, not {' '.join(words)!r}."
        )
    if words:
        directory = words[0]
    if max_age is not None:
        age = None if max_age.strip().lower() in ("none", "") else max_age
    return directory, mode, age
