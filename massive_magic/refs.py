"""Card and dashboard references -> integer ids.

Accepts what a user copies from Metabase: ``484``, ``"484"``, ``"484-daily-earnings"``,
or a URL such as ``https://massive.metabaseapp.com/question/484-daily-earnings?x=1#y``.
The rule is Metabase's own: take the path segment after ``/question/``, ``/model/``,
``/metric/``, ``/card/`` (or ``/dashboard/``) and parse its leading integer.

An id is ASCII digits only (``"٥٠١"`` is not card 501) or an integral number
(``numpy.int64`` as ``Client.cards()`` returns, anything with ``__index__``) that is
not a bool. Given the ``server`` the session talks to, a URL of another Metabase is
refused: its card 484 is not this server's card 484.
"""

from __future__ import annotations

import operator
import re
from itertools import pairwise
from urllib.parse import urlsplit

from .errors import BadCardRef, NextStep, Step

__all__ = ["card_id", "check_server", "dashboard_id", "url_origin"]

_CARD_KINDS = ("question", "model", "metric", "card")
# [0-9], not \d: \d also matches Arabic-Indic and other Unicode digits.
_SLUG = re.compile(r"^([0-9]+)(?:-[^/]*)?$")
_DEFAULT_PORTS = {"https": 443, "http": 80}
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


def _is_url(ref: str) -> bool:
    return "://" in ref


def _path_segments(ref: str) -> list[str] | None:
    """The URL path segments, or None when ``ref`` is not a URL or path."""
    if _is_url(ref) or ref.startswith("/"):
        return [s for s in urlsplit(ref).path.split("/") if s]
    return None


def url_origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, normalised: lowercase, default port dropped.

    ``"HTTPS://Metabase.Example.org:443/x"`` -> ``"https://metabase.example.org"``.
    Raises :class:`BadCardRef` for a URL without a host or with an invalid port.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BadCardRef(f"{url!r} has an invalid port.") from None
    if not scheme or not host:
        raise BadCardRef(f"{url!r} is not an absolute URL (scheme://host/...).")
    if ":" in host:  # IPv6 literal: keep it bracketed
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_server(ref: object, server: str | None, noun: str = "card") -> None:
    """Raise :class:`BadCardRef` when ``ref`` is a URL of another Metabase than ``server``.

    Pure: nothing is sent. Ids, slugs and paths (``/question/484``) have no server
    and always pass; so does everything when ``server`` is None.
    """
    if server is None or not isinstance(ref, str) or not _is_url(ref.strip()):
        return
    text = ref.strip()
    theirs, ours = url_origin(text), url_origin(server)
    if theirs != ours:
        raise BadCardRef(
            f"{text!r} is a {noun} on {theirs}, but this session is connected to {ours}; "
            f"{noun} ids differ between servers, so it cannot be read here.",
            next_steps=(NextStep(Step.CONNECT_SERVER, ref=text, names=(theirs,)),),
        )


def _as_index(ref: object) -> int | None:
    """``ref`` as an int if it is an integral number (not a bool, not text), else None."""
    if isinstance(ref, (bool, str, bytes)) or type(ref).__name__ in ("bool_", "bool"):
        return None
    try:
        return operator.index(ref)  # type: ignore[arg-type]
    except TypeError:
        return None


def _id_after(segments: list[str], kinds: tuple[str, ...]) -> int | None:
    """The id after one of ``kinds`` in ``segments`` or None."""
    for kind, value in pairwise(segments):
        if kind in kinds and (found := _leading_id(value)) is not None:
            return found
    return None


def _find_id(ref: object, kinds: tuple[str, ...], noun: str, hint: str) -> tuple[int | None, str]:
    """The id in ``ref``: a positive integral number, ``"484"``/``"484-slug"``, or the
    segment after one of ``kinds`` in a URL. ``(None, text)`` for a URL without one, so
    the caller can say what the URL is instead."""
    number = _as_index(ref)
    if number is not None:
        if number > 0:
            return number, str(number)
        raise BadCardRef(f"{noun.capitalize()} ids are positive integers, not {number}. {hint}")
    if not isinstance(ref, str):
        raise BadCardRef(f"{ref!r} is not a {noun} reference. {hint}")
    text = ref.strip()
    segments = _path_segments(text)
    if segments is None:
        found = _leading_id(text)
        if found is None:
            raise BadCardRef(f"{text!r} is not a {noun} reference. {hint}")
        return found, text
    return _id_after(segments, kinds), text


def card_id(ref: object, server: str | None = None) -> int:
    """The card id in ``ref``; raises :class:`BadCardRef` with a hint otherwise.

    ``server``: the base URL of the session; a URL of another server is refused.
    """
    found, text = _find_id(ref, _CARD_KINDS, "card", _HINT)
    if found is not None:
        check_server(ref, server, "card")
        return found
    segments = _path_segments(text) or []
    if "dashboard" in segments:
        raise BadCardRef(
            f"{text!r} is a dashboard, not a card. Open the card itself on the dashboard "
            "(click its title) and use that URL, which contains /question/<id>.",
            next_steps=(NextStep(Step.READ_DASHBOARD, ref=_id_after(segments, ("dashboard",))),),
        )
    if segments and segments[0] in ("question", "model") and len(segments) == 1:
        raise BadCardRef(
            f"{text!r} is an unsaved question without an id. Save it first, then use its URL."
        )
    raise BadCardRef(f"Cannot find a card id in {text!r}. {_HINT}")


def dashboard_id(ref: object, server: str | None = None) -> int:
    """The dashboard id in ``ref`` (an id, ``"12-slug"`` or a ``/dashboard/12`` URL).

    ``server``: the base URL of the session; a URL of another server is refused.
    """
    hint = "Use a dashboard id (12) or the dashboard's URL ('https://…/dashboard/12-overview')."
    found, text = _find_id(ref, ("dashboard",), "dashboard", hint)
    if found is not None:
        check_server(ref, server, "dashboard")
        return found
    segments = _path_segments(text) or []
    if any(kind in _CARD_KINDS for kind in segments):
        raise BadCardRef(
            f"{text!r} is a card, not a dashboard.",
            next_steps=(NextStep(Step.READ_CARD, ref=_id_after(segments, _CARD_KINDS)),),
        )
    raise BadCardRef(f"Cannot find a dashboard id in {text!r}. {hint}")
