"""What a Client has learnt about cards and dashboards, shared by its threads.

A card's JSON (``GET /api/card/:id``) is fetched once per Client and kept here;
so are the names of cards seen anywhere (the card list, a dashboard's cards, a
lookup beside a read), for the provenance of later reads, and the cards as a list
or a dashboard showed them (name, type, last edit: enough for a frame's links
without a request). Dashboards read are kept by id and name for completion.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .metadata import Dashcard

__all__ = ["CardMemory"]


class CardMemory:
    """Thread-safe memory of cards and dashboards, keyed by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cards: dict[int, dict[str, Any]] = {}  # GET /api/card/:id, per card
        self._names: dict[int, str] = {}  # card names seen anywhere, for provenance
        # cards as the card list or a dashboard showed them: name, type, last edit (links)
        self._seen: dict[int, dict[str, Any]] = {}
        self._dashboards: dict[int, str | None] = {}  # dashboards read: id -> name

    def card(self, cid: int) -> dict[str, Any] | None:
        """The card's own JSON (``GET /api/card/:id``), if fetched already."""
        with self._lock:
            return self._cards.get(cid)

    def known(self, cid: int) -> dict[str, Any] | None:
        """The card's own JSON, or else the card as a list or dashboard showed it."""
        with self._lock:
            return self._cards.get(cid) or self._seen.get(cid)

    def name(self, cid: int) -> str | None:
        with self._lock:
            return self._names.get(cid)

    def remember(self, cid: int, card: dict[str, Any]) -> None:
        """Keep the card's own JSON (and its name)."""
        with self._lock:
            self._cards[cid] = card
            if isinstance(card.get("name"), str):
                self._names[cid] = card["name"]

    def saw_list(self, found: Iterable[dict[str, Any]]) -> None:
        """The card list's cards (``GET /api/card``): their names, as shown."""
        with self._lock:
            for card in found:
                if isinstance(card.get("id"), int) and isinstance(card.get("name"), str):
                    self._names[card["id"]] = card["name"]
                    self._seen[card["id"]] = card

    def saw_dashboard(self, did: int, dash: Mapping[str, Any], entries: list[Dashcard]) -> None:
        """Dashboard ``did`` was read: its name, and its cards' where not known yet."""
        with self._lock:
            self._dashboards[did] = dash.get("name") if isinstance(dash.get("name"), str) else None
            for entry in entries:
                if entry.card_name:
                    self._names.setdefault(entry.card_id, entry.card_name)
                if entry.card is not None:
                    self._seen.setdefault(entry.card_id, dict(entry.card))

    def dashboards(self) -> dict[int, str | None]:
        """Dashboards read, id -> name (a copy)."""
        with self._lock:
            return dict(self._dashboards)
