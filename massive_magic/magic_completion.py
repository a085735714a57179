"""Tab completion in IPython and Jupyter: IPython's completer API over :mod:`completion`.

:class:`MagicCompleter` is one IPython matcher (the Matcher API v2 of IPython 8.6+,
in ``shell.Completer.custom_matchers``): it reads where the cursor is
(:func:`completion.cell_context`) and answers with card or dashboard references,
parameter names or listed values. What it knows comes from Metabase, so the rules
are about waiting:

- the card list (``GET /api/card``) and the dashboard list are read once per
  logged-in client, in a thread of their own; a card's declarations once per card;
- a Tab waits for an answer at most the client's connect timeout; an answer that
  comes later serves the next Tab, so no request is sent per keystroke;
- nothing raises and nothing is logged in: without ``%massive_login`` (or after a
  failed read) it completes nothing.

Dashboards: Metabase lists them at ``GET /api/dashboard/`` (``f=all``); a server
that does not answer it (the sandbox) completes the dashboards read so far.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from IPython.core.completer import SimpleCompletion, context_matcher

from .completion import (
    CardIndex,
    CellContext,
    cell_context,
    complete_parameter_names,
    complete_parameter_values,
)
from .errors import MassiveError
from .parameters import match_parameter
from .refs import card_id

if TYPE_CHECKING:
    from IPython.core.completer import CompletionContext
    from IPython.core.interactiveshell import InteractiveShell

    from .client import Client

__all__ = ["MagicCompleter"]

T = TypeVar("T")
#: Runs before IPython's own matchers, so its answer replaces theirs (file names, jedi).
_PRIORITY = 100


class _Background(Generic[T]):
    """``work()`` in a daemon thread, started now; :meth:`result` waits a bounded time."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self.value: T | None = None
        self._done = threading.Event()

        def run() -> None:
            try:
                self.value = work()
            except Exception:  # completion never raises: a failed read completes nothing
                self.value = None
            finally:
                self._done.set()

        threading.Thread(target=run, name=name, daemon=True).start()

    def result(self, wait: float) -> T | None:
        """The value if it is there within ``wait`` seconds, else None (ask again later)."""
        self._done.wait(wait)
        return self.value


class _Known:
    """What completion learned from one client: lists and declarations, each read once."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cards: _Background[tuple[CardIndex, dict[int, Any]]] | None = None
        self.dashboards: _Background[CardIndex | None] | None = None
        self.decls: dict[int, _Background[list[Mapping[str, Any]]]] = {}


class MagicCompleter:
    """The matcher for the magics; ``client_of()`` is the logged-in client or None."""

    def __init__(self, client_of: Callable[[], Client | None]) -> None:
        self.client_of = client_of
        self._known: _Known | None = None
        self._lock = threading.Lock()

    # -- IPython ---------------------------------------------------------------------

    def install(self, shell: InteractiveShell) -> None:
        matchers = shell.Completer.custom_matchers
        if self.matcher not in matchers:
            matchers.append(self.matcher)

    def remove(self, shell: InteractiveShell) -> None:
        matchers = shell.Completer.custom_matchers
        while self.matcher in matchers:
            matchers.remove(self.matcher)

    @context_matcher(priority=_PRIORITY, identifier="massive_magic")
    def matcher(self, context: CompletionContext) -> dict[str, Any]:
        """IPython's Matcher API v2: the completions and the text they replace."""
        try:
            typed, found = self.complete(
                context.full_text, context.text_until_cursor, context.cursor_line, context.limit
            )
        except Exception:  # never a traceback under the user's prompt
            typed, found = "", []
        if not found or not context.text_until_cursor.endswith(typed):
            return {"completions": []}
        return {
            "completions": [SimpleCompletion(text, type=kind) for text, kind in found],
            "matched_fragment": typed,
            "suppress": True,
            "ordered": True,
        }

    # -- what to offer ---------------------------------------------------------------

    def complete(
        self,
        cell: str,
        before_cursor: str,
        cursor_line: int | None = None,
        limit: int | None = None,
    ) -> tuple[str, list[tuple[str, str]]]:
        """``(typed text to replace, [(completion, kind), ...])`` at the cursor."""
        where = cell_context(cell, before_cursor, cursor_line)
        if where.kind == "none":
            return "", []
        known = self._for_client()
        if known is None:
            return "", []
        if where.kind == "card":
            index = self._cards(known)
            refs = index[0].complete(where.prefix, limit) if index else []
            return where.prefix, [(ref, "card") for ref in refs]
        if where.kind == "dashboard":
            dashboards = self._dashboards(known)
            refs = dashboards.complete(where.prefix, limit) if dashboards else []
            return where.prefix, [(ref, "dashboard") for ref in refs]
        decls = self._declarations(known, where.card_ref)
        if where.kind == "name":
            names = complete_parameter_names(decls, where.prefix, where.given)
            return where.prefix, [(name, "parameter") for name in names]
        return where.prefix, [(value, "value") for value in _values(decls, where)]

    def _for_client(self) -> _Known | None:
        client = self.client_of()
        if client is None:
            return None
        with self._lock:
            if self._known is None or self._known.client is not client:
                self._known = _Known(client)  # a new login: lists read anew
            return self._known

    def _cards(self, known: _Known) -> tuple[CardIndex, dict[int, Any]] | None:
        with self._lock:
            if known.cards is None:
                known.cards = _Background(lambda: _card_list(known.client), "massive-complete")
        return known.cards.result(_wait(known.client))

    def _dashboards(self, known: _Known) -> CardIndex | None:
        with self._lock:
            if known.dashboards is None:
                known.dashboards = _Background(
                    lambda: _dashboard_list(known.client), "massive-complete"
                )
        found = known.dashboards.result(_wait(known.client))
        seen = _dashboards_read(known.client)
        if found is None or not seen:
            return found if found is not None else CardIndex(seen)
        listed = {entry.id for entry in found.entries}
        extra = [d for d in seen if d["id"] not in listed]
        if not extra:
            return found
        items = [{"id": e.id, "name": e.name} for e in found.entries]
        return CardIndex(items + extra)

    def _declarations(self, known: _Known, ref: str | None) -> list[Mapping[str, Any]]:
        """The parameters of the card on the ``%%massive_card`` line ([] if unknown yet)."""
        if ref is None:
            return []
        try:
            cid = card_id(ref)
        except MassiveError:
            return []
        with self._lock:
            pending = known.decls.get(cid)
            listed = known.cards.value if known.cards is not None else None
            if pending is None:
                entry = listed[1].get(cid) if listed else None
                if entry is not None and isinstance(entry.get("parameters"), list):
                    return list(entry["parameters"])  # the card list has them: no request
                client = known.client
                pending = _Background(
                    lambda: list(client.card_info(cid)["parameters"]), "massive-complete"
                )
                known.decls[cid] = pending
        return pending.result(_wait(known.client)) or []


def _wait(client: Client) -> float:
    """How long one Tab may wait for Metabase: the client's connect timeout."""
    return float(client.settings.connect_timeout)


def _card_list(client: Client) -> tuple[CardIndex, dict[int, Any]]:
    from .metadata import list_cards

    cards = list_cards(client.session)
    by_id = {c["id"]: c for c in cards if isinstance(c.get("id"), int)}
    return CardIndex(cards), by_id


def _dashboard_list(client: Client) -> CardIndex | None:
    from .metadata import list_dashboards

    try:
        return CardIndex(list_dashboards(client.session))
    except MassiveError:  # not served (some Metabase versions): the dashboards read so far serve
        return None


def _dashboards_read(client: Client) -> list[dict[str, Any]]:
    return [{"id": did, "name": name} for did, name in client.dashboards_read.items()]


def _values(decls: list[Mapping[str, Any]], where: CellContext) -> list[str]:
    """Values listed for the parameter named before ``=`` (none for an unknown name)."""
    if not decls or not where.name:
        return []
    try:
        decl = match_parameter(decls, where.name)
    except MassiveError:
        return []
    return complete_parameter_values(decl, where.prefix, in_list=where.in_list)
