"""Card and dashboard metadata: what a card is, which cards exist, what a dashboard holds.

``GET /api/card/:id``, ``GET /api/card`` and ``GET /api/dashboard/:id``, with
errors that name the card or dashboard, and the pure summaries built from them:
:func:`card_summary` (``Client.card_info``), :func:`cards_frame` (``Client.cards``),
:func:`dashboard_cards` and :class:`DashboardResult` (``Client.dashboard``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget, as_object, card_errors, server_url
from .card_view import column_dtypes, edit_facts
from .errors import AccessDenied, DashboardNotFound, MassiveError, NotFound, ResponseError
from .frames import FrameBuilder
from .links import card_url
from .parameters import declarations
from .session import read_json

if TYPE_CHECKING:
    import pandas as pd

    from .session import MetabaseSession

__all__ = [
    "DashboardResult",
    "Dashcard",
    "card_summary",
    "cards_frame",
    "dashboard_cards",
    "fetch_card",
    "fetch_dashboard",
    "list_cards",
    "list_dashboards",
]


def fetch_card(session: MetabaseSession, card_id: int) -> dict[str, Any]:
    """``GET /api/card/:id`` with errors that name the card."""
    with card_errors(QueryTarget(card_id), server_url(session)):
        # ignore_view: reading metadata should not fill the user's "recently viewed".
        response = session.request("GET", f"/api/card/{card_id}", params={"ignore_view": "true"})
    return as_object(read_json(response), f"/api/card/{card_id}")


def list_cards(session: MetabaseSession) -> list[dict[str, Any]]:
    """``GET /api/card``: every card this user can read (not archived)."""
    return _list(session, "/api/card", "cards")


def list_dashboards(session: MetabaseSession) -> list[dict[str, Any]]:
    """``GET /api/dashboard/?f=all``: the dashboards this user can read (for completion).

    Newer Metabase versions may not serve it (404): callers fall back on what they know.
    """
    return _list(session, "/api/dashboard/", "dashboards")


def _list(session: MetabaseSession, path: str, what: str) -> list[dict[str, Any]]:
    """``GET path?f=all``: a list of objects, or a ResponseError saying it is not one."""
    found = read_json(session.request("GET", path, params={"f": "all"}))
    if not isinstance(found, list):
        raise ResponseError(
            f"Metabase answered {path} with something other than a list of {what}.",
            url=server_url(session),
        )
    return [item for item in found if isinstance(item, dict)]


def fetch_dashboard(session: MetabaseSession, dashboard_id: int) -> dict[str, Any]:
    """``GET /api/dashboard/:id`` with errors that name the dashboard."""
    url = server_url(session)
    try:
        response = session.request("GET", f"/api/dashboard/{dashboard_id}")
    except NotFound as exc:
        raise DashboardNotFound(
            f"Dashboard {dashboard_id} not found on {url}. Check the id in the dashboard's URL "
            "(/dashboard/<id>-…).",
            dashboard_id=dashboard_id,
        ) from exc
    except AccessDenied as exc:
        raise AccessDenied(
            f"You may not read dashboard {dashboard_id} on {url} (Metabase answered 403). "
            "Ask a Metabase admin for access to its collection."
        ) from exc
    return as_object(read_json(response), f"/api/dashboard/{dashboard_id}")


def card_summary(
    card: Mapping[str, Any], *, server: str | None = None, details: bool = False
) -> dict[str, Any]:
    """What a notebook user wants to know about a card, from ``GET /api/card/:id``.

    ``details=True`` (``Client.card_info``) adds who last edited it and when
    (``last_edited_by``, ``updated_at``) and each column's pandas ``dtype``; a
    ``server`` adds ``url``, the card's Metabase link. The card list leaves them
    out: working out dtypes for every card would cost more than the list itself.
    """
    collection = card.get("collection")
    parameters = [decl.info() for decl in declarations(card)]
    columns = [
        {
            "name": col.get("name"),
            "display_name": col.get("display_name"),
            "type": col.get("effective_type") or col.get("base_type"),
        }
        for col in card.get("result_metadata") or []
    ]
    summary: dict[str, Any] = {
        "id": card.get("id"),
        "name": card.get("name"),
        "description": card.get("description"),
        "collection": collection.get("name") if isinstance(collection, dict) else None,
        "type": card.get("type") or ("model" if card.get("dataset") else "question"),
        "parameters": parameters,
        "columns": columns,
    }
    if server is not None and isinstance(card.get("id"), int):
        kind = summary["type"] if summary["type"] in ("question", "model", "metric") else "question"
        summary["url"] = card_url(server, card["id"], card.get("name"), kind=kind)
    if details:
        summary.update(edit_facts(card))
        for column, dtype in zip(columns, column_dtypes(columns), strict=True):
            column["dtype"] = dtype
    return summary


_CARD_LIST_COLS = [
    {"name": "id", "display_name": "ID", "base_type": "type/Integer"},
    {"name": "name", "display_name": "Name", "base_type": "type/Text"},
    {"name": "collection", "display_name": "Collection", "base_type": "type/Text"},
    {"name": "type", "display_name": "Type", "base_type": "type/Text"},
    {"name": "description", "display_name": "Description", "base_type": "type/Text"},
]


def cards_frame(cards: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The card list as a typed frame: id, name, collection, type, description."""
    rows = []
    for card in cards:
        summary = card_summary(card)
        rows.append([summary[c["name"]] for c in _CARD_LIST_COLS])
    builder = FrameBuilder([{**c, "effective_type": c["base_type"]} for c in _CARD_LIST_COLS])
    builder.add_rows(rows)
    return builder.build()


# -- dashboards ----------------------------------------------------------------


@dataclass(frozen=True)
class Dashcard:
    """One card placed on a dashboard, with the unique name its frame is keyed by."""

    key: str
    dashcard_id: int
    card_id: int
    card_name: str | None
    #: The dashcard's embedded card (``name``, ``type``, ``parameters``, ``updated_at``).
    card: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


def dashboard_cards(dashboard: Mapping[str, Any]) -> list[Dashcard]:
    """The dashboard's cards in display order, keyed "Name", "Name (2)", ...

    ``dashcards`` (Metabase 0.48+) falls back to ``ordered_cards``; text and heading
    cards (``card_id`` null) are skipped.
    """
    raw = dashboard.get("dashcards")
    if raw is None:
        raw = dashboard.get("ordered_cards")
    placed = [d for d in raw or [] if isinstance(d, dict) and d.get("card_id") is not None]
    placed.sort(key=lambda d: (d.get("row") or 0, d.get("col") or 0))
    seen: dict[str, int] = {}
    out = []
    for dashcard in placed:
        card = dashcard.get("card")
        name = card.get("name") if isinstance(card, dict) else None
        name = name if isinstance(name, str) else None
        base = name or f"Card {dashcard['card_id']}"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base} ({seen[base]})"
        while key in seen and key != base:
            seen[base] += 1
            key = f"{base} ({seen[base]})"
        seen.setdefault(key, 1)
        embedded = card if isinstance(card, dict) else None
        out.append(Dashcard(key, int(dashcard["id"]), int(dashcard["card_id"]), name, embedded))
    return out


class DashboardResult(dict[str, "pd.DataFrame"]):
    """``dict[str, DataFrame]`` of a dashboard's cards, plus what went wrong.

    A card that fails does not lose the others: its error is in ``.errors`` under
    the same name (and a warning names it). ``raise_errors()`` turns the first
    failure back into an exception for scripts that want all or nothing.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        errors: Mapping[str, MassiveError],
        *,
        dashboard_id: int,
        name: str | None,
    ) -> None:
        super().__init__(frames)
        self.errors: dict[str, MassiveError] = dict(errors)
        self.dashboard_id = dashboard_id
        self.name = name

    def raise_errors(self) -> None:
        """Raise the first card's error, if any card failed."""
        for error in self.errors.values():
            raise error

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {len(v)} rows" for k, v in self.items())
        failed = f"; failed: {', '.join(map(repr, self.errors))}" if self.errors else ""
        return f"<DashboardResult {self.dashboard_id} {self.name!r} {{{shapes}}}{failed}>"
