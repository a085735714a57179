"""Metabase links with filters, both ways: parameters -> URL, URL -> parameter values.

Pure: no HTTP. Metabase's own front end writes a saved question's link as
``/question/<id>-<slug of the name>`` and a dashboard's as ``/dashboard/<id>-<slug>``
(``frontend/src/metabase/lib/urls/questions.ts`` and ``dashboards.ts``: ``appendSlug``
with ``slugg(name)``), and puts filter values in the query string keyed by each
parameter's slug (``metabase-lib/v1/parameters/utils/parameter-parsing.ts``:
``getParameterValueFromQueryParams`` reads ``queryParams[parameter.slug || parameter.id]``).
Its encoder (``lib/urls/utils.ts``: ``getEncodedUrlSearchParams``) writes a list as the
key repeated, and a null value as the key with an empty value (``date=``), which the
reader takes as "explicitly cleared" (no filter, the default is not applied), while a
key that is absent means "use the default". Date values are Metabase's date strings
as sent (``2024-01-01~2024-01-31``, ``~2024-01-31``, ``past30days``).

So a link made here opens in Metabase with the filters that were sent, and a link
copied from Metabase reads back as the values ``Client.card(..., params=...)`` takes::

    >>> card_url("https://mb.example", 497, "Earnings by country", built, declarations=decls)
    'https://mb.example/question/497-earnings-by-country?country=DE&country=GB&date=2024-01-01~2024-01-31'
    >>> parse_card_url("https://mb.example/question/497-x?country=DE&country=GB&date=2024-01-01~")
    ('https://mb.example', 497, {'country': ['DE', 'GB'], 'date': ('2024-01-01', None)})
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from .errors import ParameterError
from .parameters import match_parameter
from .refs import card_id, dashboard_id, url_origin

__all__ = [
    "card_url",
    "dashboard_url",
    "edited_at",
    "frame_links",
    "merge_params",
    "parse_card_url",
    "parse_dashboard_url",
    "query_string",
    "slugify",
    "url_params",
]

_CARD_KINDS = ("question", "model", "metric", "card")
# A date or date-time as Metabase writes it in a parameter (see parameters.py).
_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_RANGE = re.compile(rf"^({_DATE})?~({_DATE})?$", re.ASCII)
#: Query keys of a dashboard link that are not filters (the selected tab).
_DASHBOARD_KEYS = frozenset({"tab"})


def slugify(name: str | None) -> str:
    """``"Earnings by country (filtered)"`` -> ``"earnings-by-country-filtered"``.

    Like the slug in Metabase's own links: lowercase, accents dropped, every run of
    other characters one ``-``. Only the leading id counts when a link is read, so the
    slug is for people.
    """
    if not name:
        return ""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


# -- parameters -> URL ---------------------------------------------------------------


def card_url(
    server: str,
    card_id: int,
    name: str | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    *,
    declarations: Sequence[Mapping[str, Any]] = (),
    kind: str = "question",
) -> str:
    """The card's Metabase link with the ``parameters`` that were sent.

    ``parameters``: Metabase parameter objects as :func:`parameters.build_parameters`
    makes them (``{"id", "type", "target", "value"}``); each is keyed in the URL by its
    slug, taken from the object, else its declaration (``declarations``, matched by
    id: the card's ``parameters``), else its template tag. ``kind``: ``question``,
    ``model`` or ``metric`` (the card's ``type``).
    """
    path = f"/{kind}/{_id_slug(card_id, name)}"
    return _join(server, path, query_string(parameters, declarations))


def dashboard_url(
    server: str,
    dashboard_id: int,
    name: str | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    *,
    declarations: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The dashboard's Metabase link with its filters; ``declarations``: its ``parameters``.

    A dashboard's parameter objects have no target, so give ``declarations`` (or
    objects with a ``slug``) for readable keys; without either the id is the key, which
    Metabase reads too only when the parameter has no slug.
    """
    path = f"/dashboard/{_id_slug(dashboard_id, name)}"
    return _join(server, path, query_string(parameters, declarations))


def query_string(
    parameters: Sequence[Mapping[str, Any]], declarations: Sequence[Mapping[str, Any]] = ()
) -> str:
    """``country=DE&country=GB&date=2024-01-01~2024-01-31`` for ``parameters``.

    One ``slug=value`` per value, in the order sent: a list repeats the key, ``None``
    (no filter) is ``slug=`` as Metabase writes it, booleans are ``true``/``false``,
    numbers as Python writes them.
    """
    by_id = {d.get("id"): d for d in declarations if d.get("id") is not None}
    pairs: list[str] = []
    for param in parameters:
        key = quote(_slug_of(param, by_id), safe="")
        value = param.get("value")
        items = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend(f"{key}={quote(_url_text(item), safe=':~')}" for item in items)
    return "&".join(pairs)


def edited_at(card: Mapping[str, Any] | None) -> str | None:
    """When the card was last changed: ``last-edit-info.timestamp``, else ``updated_at``."""
    if not isinstance(card, Mapping):
        return None
    info = card.get("last-edit-info")
    when = (info.get("timestamp") if isinstance(info, Mapping) else None) or card.get("updated_at")
    return str(when) if when else None


def frame_links(
    server: str,
    card_id: int,
    card: Mapping[str, Any] | None,
    parameters: Sequence[Mapping[str, Any]],
    *,
    dashboard: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The link facts of a frame's provenance: ``card_url``, ``card_updated_at``, ``dashboard_url``.

    ``card``: ``GET /api/card/:id`` (or a dashcard's embedded card), None if unknown:
    the link is then made of the id and the parameter objects alone. Read through a
    ``dashboard`` (its ``GET /api/dashboard/:id``), the parameters are the dashboard's
    filters: they go on ``dashboard_url``, and ``card_url`` opens the card alone.
    """
    card = card if isinstance(card, Mapping) else {}
    name = card.get("name") if isinstance(card.get("name"), str) else None
    kind = card.get("type") if card.get("type") in ("question", "model", "metric") else "question"
    if dashboard is None:
        url = card_url(server, card_id, name, parameters, declarations=_decls(card), kind=str(kind))
        return {"card_url": url, "card_updated_at": edited_at(card), "dashboard_url": None}
    board = dashboard_url(
        server,
        int(dashboard.get("id") or 0),
        dashboard.get("name") if isinstance(dashboard.get("name"), str) else None,
        parameters,
        declarations=_decls(dashboard),
    )
    return {
        "card_url": card_url(server, card_id, name, kind=str(kind)),
        "card_updated_at": edited_at(card),
        "dashboard_url": board,
    }


def _decls(owner: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = owner.get("parameters")
    return [d for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []


def _id_slug(ident: int, name: str | None) -> str:
    slug = slugify(name)
    return f"{int(ident)}-{slug}" if slug else str(int(ident))


def _join(server: str, path: str, query: str) -> str:
    return server.rstrip("/") + path + (f"?{query}" if query else "")


def _slug_of(param: Mapping[str, Any], by_id: Mapping[Any, Mapping[str, Any]]) -> str:
    """The key Metabase reads this parameter's value from (its slug, else its id)."""
    slug = param.get("slug") or by_id.get(param.get("id"), {}).get("slug")
    if slug:
        return str(slug)
    target = param.get("target")
    # ["variable", ["template-tag", "min_orders"]]: a native card's slug is its tag name.
    if (
        isinstance(target, list)
        and len(target) == 2
        and isinstance(target[1], list)
        and len(target[1]) == 2
        and target[1][0] == "template-tag"
    ):
        return str(target[1][1])
    if param.get("id") is None:
        raise ParameterError(f"Cannot name {param!r} in a link: it has no slug, target or id.")
    return str(param["id"])


def _url_text(item: Any) -> str:
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


# -- URL -> parameter values ---------------------------------------------------------


def parse_card_url(
    text: object, *, server: str | None = None
) -> tuple[str | None, int, dict[str, Any]]:
    """``(server, card id, values by slug)`` from a card link (or any card reference).

    ``server`` of the result is the link's site (scheme, host, port and any path
    before ``/question/``), ``None`` for an id, ``"484-slug"`` or a bare path. Given a
    ``server`` (the session's), a link of another Metabase is refused
    (:class:`~massive_magic.errors.BadCardRef`). Values: see :func:`url_params`.
    """
    cid = card_id(text, server=server)
    return _parse(text, _CARD_KINDS, cid, frozenset())


def parse_dashboard_url(
    text: object, *, server: str | None = None
) -> tuple[str | None, int, dict[str, Any]]:
    """``(server, dashboard id, filter values by slug)``; the ``tab`` key is not a filter."""
    did = dashboard_id(text, server=server)
    return _parse(text, ("dashboard",), did, _DASHBOARD_KEYS)


def url_params(query: str, *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Parameter values by slug from a link's query string, as ``Client.card`` takes them.

    - a key given once: its text (``"DE"``, ``"50"``: numbers stay text and
      ``build_parameters`` converts them by the declared type);
    - a key repeated: a list of texts (``["DE", "GB"]``);
    - an empty value (``date=``): ``None``, no filter;
    - a date range ``a~b`` / ``~b`` / ``a~``: a ``(start, end)`` tuple of date
      strings, ``None`` for an open end (relative dates such as ``past3months~``
      stay text).
    """
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key and key not in skip:
            grouped.setdefault(key, []).append(value)
    values: dict[str, Any] = {}
    for key, texts in grouped.items():
        if len(texts) > 1:
            values[key] = [text if text else None for text in texts]
        else:
            values[key] = _single_value(texts[0])
    return values


def _single_value(text: str) -> Any:
    if not text:
        return None
    match = _DATE_RANGE.match(text)
    if match and (match.group(1) or match.group(2)):
        return (match.group(1), match.group(2))
    return text


def _parse(
    text: object, kinds: tuple[str, ...], ident: int, skip: frozenset[str]
) -> tuple[str | None, int, dict[str, Any]]:
    if not isinstance(text, str):
        return None, ident, {}
    parts = urlsplit(text.strip())
    values = url_params(parts.query, skip=skip)
    if "://" not in text:
        return None, ident, values
    segments = parts.path.split("/")
    cut = next((i for i, s in enumerate(segments) if s in kinds), len(segments))
    # The origin is rebuilt from host and port: user:password@ in a link is never kept.
    site = url_origin(text) + "/".join(segments[:cut]).rstrip("/")
    return site, ident, values


def merge_params(
    url_values: Mapping[str, Any] | None,
    explicit: Mapping[str, Any] | None,
    declarations: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The link's values with ``explicit`` ones on top: an explicit value wins.

    Keys name the same parameter when they match the same declaration (slug, display
    name or id, as :func:`parameters.match_parameter` decides), or without
    ``declarations`` when they are equal ignoring case. An explicit ``None`` clears a
    link's filter. Unknown names are kept, for ``build_parameters`` to report.
    """
    merged = dict(url_values or {})
    for key, value in (explicit or {}).items():
        same = _same_parameter(key, declarations)
        for other in [k for k in merged if same(k)]:
            del merged[other]
        merged[key] = value
    return merged


def _same_parameter(key: str, declarations: Sequence[Mapping[str, Any]] | None) -> Any:
    folded = str(key).strip().casefold()
    decl: Mapping[str, Any] | None = None
    if declarations:
        try:
            decl = match_parameter(declarations, key)
        except ParameterError:
            decl = None

    def same(other: str) -> bool:
        if str(other).strip().casefold() == folded:
            return True
        if decl is None or not declarations:
            return False
        try:
            return match_parameter(declarations, other) is decl
        except ParameterError:
            return False

    return same
