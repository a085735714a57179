"""Card and dashboard references -> integer ids.

Accepts what a user copies from Metabase: ``484``, ``"484"``, ``"484-daily-earnings"``,
or a URL such as ``https://massive.metabaseapp.com/question/484-daily-earnings?x=1#y``.
The rule is Metabase's own: take the path segment after ``/question/``, ``/model/``,
``/metric/``, ``/card/`` (or ``/dashboard/``) and parse its leading integer.
"""

from __future__ import annotations

import re
from itertools import pairwise
from urllib.parse import urlsplit

from .errors import BadCardRef

__all__ = ["card_id", "dashboard_id"]

_CARD_KINDS = ("question", "model", "metric", "card")
_SLUG = re.compile(r"^(\d+)(?:-[^/]*)?$")
_HINT = (
    "Use a card id (484), an id with its slug ('484-daily-earnings') "
    "or the card's URL ('https://…/question/484-daily-earnings')."
)


def _leading_id(segment: str) -> int | None:
    match = _SLUG.match(segment)
    if not match:
        return None
    value = int(match.group(1))
    return value if value > 0 else None


def _path_segments(ref: str) -> list[str] | None:
    """The URL path segments, or None when ``ref`` is not a URL or path."""
    if "://" in ref:
        return [s for s in urlsplit(ref).path.split("/") if s]
    if ref.startswith("/"):
        return [s for s in urlsplit(ref).path.split("/") if s]
    return None


def _find_id(ref: object, kinds: tuple[str, ...], noun: str, hint: str) -> tuple[int | None, str]:
    """The id in ``ref``: a positive int, ``"484"``/``"484-slug"``, or the segment after
    one of ``kinds`` in a URL. ``(None, text)`` for a URL without one, so the caller can
    say what the URL is instead."""
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise BadCardRef(f"{ref!r} is not a {noun} reference. {hint}")
    if isinstance(ref, int):
        if ref > 0:
            return ref, str(ref)
        raise BadCardRef(f"{noun.capitalize()} ids are positive integers, not {ref}. {hint}")
    text = ref.strip()
    segments = _path_segments(text)
    if segments is None:
        found = _leading_id(text)
        if found is None:
            raise BadCardRef(f"{text!r} is not a {noun} reference. {hint}")
        return found, text
    for kind, value in pairwise(segments):
        if kind in kinds and (found := _leading_id(value)) is not None:
            return found, text
    return None, text


def card_id(ref: object) -> int:
    """The card id in ``ref``; raises :class:`BadCardRef` with a hint otherwise."""
    found, text = _find_id(ref, _CARD_KINDS, "card", _HINT)
    if found is not None:
        return found
    segments = _path_segments(text) or []
    if "dashboard" in segments:
        raise BadCardRef(
            f"{text!r} is a dashboard, not a card. Open the card itself on the dashboard "
            "(click its title) and use that URL, which contains /question/<id>; "
            "or read the whole dashboard with Client.dashboard()."
        )
    if segments and segments[0] in ("question", "model") and len(segments) == 1:
        raise BadCardRef(
            f"{text!r} is an unsaved question without an id. Save it first, then use its URL."
        )
    raise BadCardRef(f"Cannot find a card id in {text!r}. {_HINT}")


def dashboard_id(ref: object) -> int:
    """The dashboard id in ``ref`` (an id, ``"12-slug"`` or a ``/dashboard/12`` URL)."""
    hint = "Use a dashboard id (12) or the dashboard's URL ('https://…/dashboard/12-overview')."
    found, text = _find_id(ref, ("dashboard",), "dashboard", hint)
    if found is not None:
        return found
    if any(kind in _CARD_KINDS for kind in _path_segments(text) or []):
        raise BadCardRef(f"{text!r} is a card, not a dashboard. Use Client.card() for it.")
    raise BadCardRef(f"Cannot find a dashboard id in {text!r}. {hint}")
