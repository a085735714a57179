"""What a replay needs besides the frames: card declarations and dashboard layouts.

A read with parameters turns the user's values into Metabase parameter objects
from the card's declarations (``GET /api/card/:id``); a dashboard's cards and
filters come from its layout (``GET /api/dashboard/:id``). Recorded beside the
snapshots, in ``<directory>/metadata/``, they let a replay build exactly the key
it recorded with, without a request. Only what that needs is kept (ids, names,
declarations, positions, ``updated_at``): never SQL, a user or a secret. Each
file is a checksummed JSON document written atomically (``snapshot_files``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from massive_magic.snapshot_files import damaged, json_document, read_document, write_atomic
from massive_magic.snapshot_keys import canonical_url

__all__ = ["RecordedMetadata", "card_document", "dashboard_document"]

FORMAT = "massive-magic-metadata"
VERSION = 1
FOLDER = "metadata"

#: What a recorded card keeps of ``GET /api/card/:id``.
_CARD_KEYS = ("id", "name", "updated_at", "parameters")
#: ... and of a dashboard's ``GET /api/dashboard/:id`` and each of its dashcards.
_DASHBOARD_KEYS = ("id", "name", "updated_at", "parameters")
_DASHCARD_KEYS = ("id", "card_id", "row", "col")


def card_document(card: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a card's JSON a replay needs: id, name, updated_at, declarations."""
    return {k: card.get(k) for k in _CARD_KEYS}


def dashboard_document(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a dashboard's JSON a replay needs: filters and where each card sits."""
    raw = dashboard.get("dashcards")
    if raw is None:
        raw = dashboard.get("ordered_cards")
    dashcards = []
    for dashcard in raw or []:
        if not isinstance(dashcard, Mapping):
            continue
        kept = {k: dashcard.get(k) for k in _DASHCARD_KEYS}
        card = dashcard.get("card")
        if isinstance(card, Mapping):
            kept["card"] = {"name": card.get("name"), "updated_at": card.get("updated_at")}
        dashcards.append(kept)
    return {**{k: dashboard.get(k) for k in _DASHBOARD_KEYS}, "dashcards": dashcards}


class RecordedMetadata:
    """Card declarations and dashboard layouts per server, in one snapshot directory.

    A missing file means "not recorded" (None); a damaged one raises
    :class:`~massive_magic.errors.SnapshotError`.
    """

    def __init__(self, directory: Path, server: str) -> None:
        self.folder = Path(directory) / FOLDER
        self.server = canonical_url(server)
        self._suffix = hashlib.sha256(self.server.encode()).hexdigest()[:16]
        self._written: dict[Path, bytes] = {}  # a loop over parameter values writes once

    def card(self, card_id: int) -> dict[str, Any] | None:
        """The recorded part of ``GET /api/card/:id``, or None."""
        return self._read("card", card_id)

    def save_card(self, card: Mapping[str, Any]) -> None:
        self._write("card", card_document(card))

    def dashboard(self, dashboard_id: int) -> dict[str, Any] | None:
        """The recorded part of ``GET /api/dashboard/:id``, or None."""
        return self._read("dashboard", dashboard_id)

    def save_dashboard(self, dashboard: Mapping[str, Any]) -> None:
        self._write("dashboard", dashboard_document(dashboard))

    def _path(self, kind: str, ident: int) -> Path:
        return self.folder / f"{kind}-{ident}-{self._suffix}.json"

    def _read(self, kind: str, ident: int) -> dict[str, Any] | None:
        path = self._path(kind, ident)
        if not path.exists():
            return None
        document = read_document(path, FORMAT, VERSION, what="metadata")
        body = document.get(kind)
        if document.get("server") != self.server or not isinstance(body, dict):
            raise damaged(path, "its metadata names another server or holds nothing")
        return body

    def _write(self, kind: str, body: dict[str, Any]) -> None:
        ident = body.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int):
            return  # an answer without an id cannot be found again: nothing to keep
        document = {"format": FORMAT, "version": VERSION, "server": self.server, kind: body}
        path, data = self._path(kind, ident), json_document(document)
        if self._written.get(path) != data or not path.exists():
            write_atomic(path, data)
            self._written[path] = data
