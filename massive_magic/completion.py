"""Tab completion for the magics, as pure functions (no IPython, no HTTP).

What is completed, and where (``cell_context`` tells which):

- ``%massive_card 48<TAB>`` / ``%%massive_card daily<TAB>`` -> ``484-daily-earnings-by-app``:
  a card's ``id-slug`` (what Metabase's own links show), matching a prefix of the id
  (or of ``id-slug``) or of any word of the name, case-insensitively; id matches come
  first, then name matches, each in the order of the card list (a stable order).
  ``%massive_dashboard`` likewise with dashboards.
- the body of a ``%%massive_card`` cell: at the start of a line a parameter name
  (``country = ``), after ``name =`` the values Metabase lists for that parameter.

The card list is ``GET /api/card`` (dicts with ``id``, ``name``, ``collection``).
:class:`CardIndex` sorts it once, so each keystroke is two binary searches, fast
for thousands of cards.
"""

from __future__ import annotations

import bisect
import json
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .links import slugify

__all__ = [
    "CARD_MAGICS",
    "DASHBOARD_MAGICS",
    "CardIndex",
    "CellContext",
    "DashboardIndex",
    "RefMatch",
    "cell_context",
    "complete_card_refs",
    "complete_dashboards",
    "complete_parameter_names",
    "complete_parameter_values",
    "fit_to_token",
    "static_values",
]

#: Magics whose reference argument is a card / a dashboard.
CARD_MAGICS = ("massive_card", "massive_info")
DASHBOARD_MAGICS = ("massive_dashboard",)
#: Options of those magics that take a value (the next word is not the reference).
_VALUE_OPTIONS = frozenset({"-o", "--output", "--limit"})
_CELL_MAGIC = re.compile(r"^\s*%%(\w+)\s*(.*)$")
_LINE_MAGIC = re.compile(r"^\s*%{1,2}(\w+)(\s.*)?$")

#: Date strings worth offering for a date parameter (Metabase's relative forms).
_DATE_SHORTCUTS = (
    "today",
    "yesterday",
    "thisweek",
    "thismonth",
    "thisyear",
    "past7days",
    "past30days",
    "lastweek",
    "lastmonth",
    "lastyear",
)
_NUMBER = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$")
_TEMPORAL_UNITS = ("minute", "hour", "day", "week", "month", "quarter", "year")


# -- card and dashboard references ---------------------------------------------------


@dataclass(frozen=True)
class RefMatch:
    """One completion of a reference: ``ref`` to insert, and what to show beside it."""

    ref: str
    id: int
    name: str
    collection: str | None


class CardIndex:
    """Cards (or dashboards) sorted for prefix completion; build once per card list.

    ``items``: mappings with ``id`` (an int, or a numpy integer as ``Client.cards()``
    gives), ``name`` and optionally ``collection`` (a dict with ``name``, or text).
    Items without an integral id are skipped.
    """

    def __init__(self, items: Iterable[Mapping[str, Any]]) -> None:
        self.entries: list[RefMatch] = []
        refs: list[tuple[str, int]] = []
        words: list[tuple[str, int]] = []
        for item in items:
            ident = _integral(item.get("id"))
            if ident is None or ident <= 0:
                continue
            name = str(item.get("name") or "")
            slug = slugify(name)
            pos = len(self.entries)
            ref = f"{ident}-{slug}" if slug else str(ident)
            self.entries.append(RefMatch(ref, ident, name, _collection_name(item)))
            refs.append((ref, pos))
            parts = slug.split("-") if slug else []
            # Every tail of the slug that starts at a word: "by-country" for "earnings-by-country".
            words.extend(("-".join(parts[i:]), pos) for i in range(len(parts)))
        refs.sort()
        words.sort()
        self._refs, self._words = refs, words

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, prefix: str, limit: int | None = None) -> list[RefMatch]:
        """The entries ``prefix`` completes to: id matches first, then name-word matches."""
        typed = prefix.strip().casefold()
        if not typed:
            found = list(range(len(self.entries)))
        else:
            by_id = sorted(_prefixed(self._refs, typed))
            exact = [p for p in by_id if str(self.entries[p].id) == typed]
            first = exact + [p for p in by_id if p not in exact]
            seen = set(first)
            slug = slugify(typed)
            by_word = (
                sorted(p for p in _prefixed(self._words, slug) if p not in seen) if slug else []
            )
            found = first + by_word
        if limit is not None:
            found = found[:limit]
        return [self.entries[p] for p in found]

    def complete(self, prefix: str, limit: int | None = None) -> list[str]:
        """``["484-daily-earnings-by-app", ...]`` for ``prefix``."""
        return [m.ref for m in self.matches(prefix, limit)]


#: Dashboards complete exactly like cards.
DashboardIndex = CardIndex


def _prefixed(pairs: Sequence[tuple[str, int]], prefix: str) -> set[int]:
    """Positions whose key starts with ``prefix`` (``pairs`` sorted by key)."""
    found: set[int] = set()
    start = bisect.bisect_left(pairs, (prefix, -1))
    for key, pos in pairs[start:]:
        if not key.startswith(prefix):
            break
        found.add(pos)
    return found


def _integral(value: Any) -> int | None:
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _collection_name(item: Mapping[str, Any]) -> str | None:
    collection = item.get("collection")
    if isinstance(collection, Mapping):
        name = collection.get("name")
        return str(name) if name is not None else None
    return str(collection) if isinstance(collection, str) and collection else None


def complete_card_refs(cards: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    """``id-slug`` of the cards ``prefix`` names (build a :class:`CardIndex` to repeat)."""
    return CardIndex(cards).complete(prefix)


def complete_dashboards(dashboards: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    """``id-slug`` of the dashboards ``prefix`` names."""
    return DashboardIndex(dashboards).complete(prefix)


# -- parameters in a cell body -------------------------------------------------------


def complete_parameter_names(
    declarations: Sequence[Mapping[str, Any]], prefix: str, given: Iterable[str] = ()
) -> list[str]:
    """``["country = ", ...]``: slugs whose slug or display name ``prefix`` starts.

    Slug matches first, then display-name word matches, in declaration order.
    Parameters already set in the cell (``given``: slugs or display names) are left out.
    """
    typed = prefix.strip().casefold()
    taken = {str(name).strip().casefold() for name in given}
    first: list[str] = []
    then: list[str] = []
    for decl in declarations:
        slug = str(decl.get("slug") or decl.get("name") or "")
        name = str(decl.get("name") or "")
        if not slug or slug.casefold() in taken or (name and name.casefold() in taken):
            continue
        if slug.casefold().startswith(typed):
            first.append(f"{slug} = ")
        elif name.casefold().startswith(typed) or any(
            word.startswith(typed) for word in re.split(r"\W+", name.casefold()) if word
        ):
            then.append(f"{slug} = ")
    return first + then


def static_values(decl: Mapping[str, Any]) -> list[tuple[Any, str | None]]:
    """``(value, label)`` pairs of a parameter's static value list (label None if bare).

    Metabase stores them in ``values_source_config.values`` as bare values or as
    ``[value]`` / ``[value, label]`` lists; ``Client.card_info`` gives them as
    ``values`` with ``labels`` beside.
    """
    config = decl.get("values_source_config") or {}
    values = config.get("values") if isinstance(config, Mapping) else None
    if not isinstance(values, list):
        values, labels = decl.get("values"), decl.get("labels")
        if not isinstance(values, list):
            return []
        if isinstance(labels, list) and len(labels) == len(values):
            labelled = zip(values, labels, strict=True)
            return [(v, None if str(v) == str(text) else str(text)) for v, text in labelled]
        return [(v, None) for v in values]
    pairs: list[tuple[Any, str | None]] = []
    for item in values:
        if isinstance(item, (list, tuple)):
            if not item:
                continue
            label = str(item[1]) if len(item) > 1 and item[1] is not None else None
            pairs.append((item[0], label))
        else:
            pairs.append((item, None))
    return pairs


def complete_parameter_values(
    decl: Mapping[str, Any], prefix: str, *, in_list: bool = False
) -> list[str]:
    """Values for ``decl`` that ``prefix`` starts (the value, or a word of its label or text).

    The static list first, then the declared default, then for a date widget
    Metabase's relative dates, for a boolean ``true``/``false``, for a temporal unit
    the units. Each as written in a cell: text that the cell would read as a number,
    ``true``/``null`` or JSON is quoted. ``in_list``: an item of a JSON list
    (``["DE", "G``), so every text is quoted.
    """
    typed = prefix.strip().strip('"').casefold()
    candidates: list[tuple[Any, str | None]] = static_values(decl)
    family = str(decl.get("type") or "").split("/", 1)[0]
    default = decl.get("default")
    if family == "number" and isinstance(default, str) and _NUMBER.match(default.strip()):
        default = json.loads(default.strip())  # "10" from Metabase: offered as the number 10
    if default is not None and not isinstance(default, (list, dict)):
        candidates.append((default, None))
    if family == "date" and decl.get("type") not in ("date/month-year", "date/quarter-year"):
        candidates.extend((text, None) for text in _DATE_SHORTCUTS)
    elif family == "boolean":
        candidates.extend(((True, None), (False, None)))
    elif decl.get("type") == "temporal-unit":
        candidates.extend((unit, None) for unit in _TEMPORAL_UNITS)
    found: list[str] = []
    for value, label in candidates:
        text = _json_item(value) if in_list else _cell_text(value)
        plain = text.strip('"').casefold()
        # words of the label, else of a text value ("weath" finds "Lumen Weather")
        named = label if label is not None else (value if isinstance(value, str) else "")
        words = re.split(r"\W+", named.casefold())
        if (plain.startswith(typed) or any(w.startswith(typed) for w in words if w)) and (
            text not in found
        ):
            found.append(text)
    return found


def _json_item(value: Any) -> str:
    """``value`` as an item of a JSON list in a cell (taken as is: no ``{var}`` inside)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _cell_text(value: Any) -> str:
    """``value`` as written after ``name =`` in a cell so that it reads back the same.

    Braces are doubled (a cell formats ``{var}`` in); text that JSON would read as
    something else (``123``, ``true``, ``[1]``), or that a bare value would lose
    (surrounding spaces, ``#`` comments, a leading quote, line breaks), is quoted.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value).replace("{", "{{").replace("}", "}}")
    try:
        json.loads(text)
    except ValueError:
        risky = (
            not text
            or text != text.strip()
            or text.startswith(('"', "#"))
            or any(mark in text for mark in (" #", "\t#", "\n", "\r"))
        )
        return json.dumps(text, ensure_ascii=False) if risky else text
    return json.dumps(text, ensure_ascii=False)


# -- where the cursor is -------------------------------------------------------------


@dataclass(frozen=True)
class CellContext:
    """What to complete at the cursor.

    ``kind``: ``"card"`` / ``"dashboard"`` (a reference on a magic line), ``"name"`` (a
    parameter name at the start of a body line), ``"value"`` (the value of ``name``),
    or ``"none"``. ``prefix``: what is typed of that item so far (of a value in a
    JSON list, ``in_list``, the current item). ``card_ref``: the reference on the
    ``%%massive_card`` line of the cell (as written; None if it is a ``{var}`` or
    missing). ``given``: parameter names set on the cell's other lines.
    """

    kind: Literal["card", "dashboard", "name", "value", "none"]
    prefix: str = ""
    name: str | None = None
    card_ref: str | None = None
    given: tuple[str, ...] = field(default=())
    in_list: bool = False


_NONE = CellContext("none")


def cell_context(
    cell_text: str, cursor_line_text: str, cursor_line: int | None = None
) -> CellContext:
    """What the cursor is on: ``cursor_line_text`` is its line up to the cursor.

    ``cell_text`` is the whole cell (IPython's ``CompletionContext.full_text``),
    ``cursor_line`` the cursor's line number in it (so that line's own name does
    not count as given); without it, a line equal to ``cursor_line_text`` is skipped.
    """
    magic = _LINE_MAGIC.match(cursor_line_text)
    if magic and cursor_line_text.lstrip().startswith("%"):
        return _magic_line_context(magic.group(1), magic.group(2) or "")
    lines = cell_text.split("\n")
    head = _CELL_MAGIC.match(lines[0]) if lines else None
    if head is None or head.group(1) != "massive_card" or cursor_line == 0:
        return _NONE
    text = cursor_line_text.lstrip()
    if _in_comment(text):
        return _NONE
    given = tuple(
        name
        for number, line in enumerate(lines[1:], start=1)
        if (name := _name_on(line))
        and not (cursor_line == number or (cursor_line is None and line == cursor_line_text))
    )
    card_ref = _reference(head.group(2))
    name, sep, value = text.partition("=")
    if not sep:
        return CellContext("name", name.strip(), None, card_ref, given)
    value = value.lstrip()
    if "{" in value:
        return _NONE  # a {var}: Python's completion is the better help here
    if value.startswith("["):
        item = re.split(r"[\[,]", value)[-1].lstrip()
        return CellContext("value", item, name.strip(), card_ref, given, in_list=True)
    return CellContext("value", value, name.strip(), card_ref, given)


def _magic_line_context(magic: str, rest: str) -> CellContext:
    if magic in CARD_MAGICS:
        kind: Literal["card", "dashboard"] = "card"
    elif magic in DASHBOARD_MAGICS:
        kind = "dashboard"
    else:
        return _NONE
    if not rest or not rest[0].isspace():
        return _NONE  # "%massive_card" itself: IPython completes the magic's name
    words = rest.split()
    current = "" if not rest or rest[-1].isspace() else words.pop()
    if current.startswith("-") or (words and words[-1] in _VALUE_OPTIONS):
        return _NONE
    positional = [
        w
        for i, w in enumerate(words)
        if not w.startswith("-") and not (i and words[i - 1] in _VALUE_OPTIONS)
    ]
    if positional:
        return _NONE  # the reference is written already
    return CellContext(kind, current)


def _reference(args: str) -> str | None:
    """The reference among a magic line's arguments (skipping options and their values)."""
    words = args.split()
    for i, word in enumerate(words):
        if word.startswith("-") or (i and words[i - 1] in _VALUE_OPTIONS):
            continue
        return None if "{" in word else word
    return None


def _name_on(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    name, sep, _ = text.partition("=")
    return (name.strip() or None) if sep else None


def _in_comment(text: str) -> bool:
    in_string = False
    for index, char in enumerate(text):
        if char == '"':
            in_string = not in_string
        elif char == "#" and not in_string and (index == 0 or text[index - 1].isspace()):
            return True
    return False


def fit_to_token(candidate: str, typed: str, token: str) -> str | None:
    """The text to put in place of IPython's ``token`` so the line reads ``candidate``.

    IPython replaces only the last token (its delimiters include spaces and ``=``),
    while ``typed`` (the whole value so far, e.g. ``Lumen W``) may be longer. ``None``
    when the kept part of ``typed`` is not the start of ``candidate``.
    """
    if token and not typed.endswith(token):
        return None
    kept = typed[: len(typed) - len(token)]
    if not kept:
        return candidate
    if candidate.casefold().startswith(kept.casefold()):
        return candidate[len(kept) :]
    return None
