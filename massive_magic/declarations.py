"""What a card's or dashboard's parameters are: Metabase's declarations, read once.

``GET /api/card/:id`` and ``GET /api/dashboard/:id`` list ``parameters``; each names a
filter (slug, display name, id), its widget type, default, target and maybe a static
list of values with labels. :class:`ParameterDecl` is the one reading of that JSON, so
building request values (``parameters.py``), ``Client.card_info`` and the picker's
inputs agree on what a declaration says; :func:`match_parameter` finds the one a user's
name means. Pure: no HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ParameterError

__all__ = [
    "ParameterDecl",
    "as_declarations",
    "declarations",
    "describe_parameters",
    "match_index",
    "match_parameter",
]


@dataclass(frozen=True)
class ParameterDecl:
    """One parameter a card or dashboard declares, read once from Metabase's JSON.

    Every consumer (building request values, ``Client.card_info``, the picker's
    inputs) reads a declaration through this type, so they agree on what the
    declaration says: its names, widget type, default, static values with their
    labels and whether several values may be chosen.
    """

    id: str | None
    slug: str | None = None
    name: str | None = None
    #: Metabase's parameter type (``string/=``, ``date/all-options``, ``category`` ...).
    type: str = "category"
    #: Where the value goes (``["variable", ["template-tag", "x"]]``); None on dashboards.
    target: Any = field(default=None, hash=False)
    required: bool = False
    default: Any = field(default=None, hash=False)
    #: Several values may be chosen (Metabase's ``isMultiSelect``, else by type).
    multi_select: bool = False
    #: ``(value, label)`` pairs of a static value list, or None when values are not listed.
    choices: tuple[tuple[Any, str], ...] | None = None

    @classmethod
    def from_json(cls, decl: Mapping[str, Any] | ParameterDecl) -> ParameterDecl:
        """A declaration from ``GET /api/card/:id`` or ``/api/dashboard/:id`` -> ``parameters``.

        Also reads the dicts :meth:`info` writes, so ``from_json(d.info())`` keeps
        everything but ``id`` and ``target``.
        """
        if isinstance(decl, ParameterDecl):
            return decl
        if not isinstance(decl, Mapping):
            raise TypeError(f"A parameter declaration is a JSON object, not {decl!r}")
        target = decl.get("target")
        single = _is_variable(target)
        ptype = str(decl.get("type") or "category")
        multi: bool | None = None
        for key in ("isMultiSelect", "multi_select"):
            if decl.get(key) is not None:
                multi = bool(decl[key])
                break
        if multi is None:
            multi = ptype.startswith(_LIST_TYPES)
        return cls(
            id=None if decl.get("id") is None else str(decl["id"]),
            slug=None if decl.get("slug") is None else str(decl["slug"]),
            name=None if decl.get("name") is None else str(decl["name"]),
            type=ptype,
            target=target,
            required=bool(decl.get("required")),
            default=decl.get("default"),
            multi_select=multi and not single,
            choices=_choices(decl),
        )

    @property
    def key(self) -> str:
        """What the user writes and messages name: the slug, else the display name, else the id."""
        return str(self.slug or self.name or self.id)

    @property
    def label(self) -> str:
        """The display name, else :attr:`key`."""
        return self.name or self.key

    @property
    def single_value(self) -> bool:
        """A raw template-tag variable: it takes one value, never a list."""
        return _is_variable(self.target)

    @property
    def values(self) -> list[Any] | None:
        """The listed values (without labels), or None."""
        return None if self.choices is None else [value for value, _ in self.choices]

    @property
    def labels(self) -> list[str] | None:
        """The listed values' labels (the value itself where Metabase gives none), or None."""
        return None if self.choices is None else [label for _, label in self.choices]

    @property
    def widget(self) -> str:
        """The input that fits: ``choice``, ``multi-choice``, ``date``, ``date-range``,
        ``number``, ``number-range``, ``bool`` or ``text``."""
        if self.choices:
            return "multi-choice" if self.multi_select else "choice"
        if self.type in ("date", "date/single"):
            return "date"
        if self.type in ("date/range", "date/all-options"):
            return "date-range"
        if self.type == "number/between":
            return "number-range"
        if self.type == "number" or self.type.startswith("number/"):
            return "number"
        if self.type in ("boolean", "boolean/="):
            return "bool"
        return "text"

    def info(self) -> dict[str, Any]:
        """What ``Client.card_info`` shows for this parameter (plain JSON values).

        ``values`` and ``labels`` appear only when Metabase lists the values.
        """
        info: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "multi_select": self.multi_select,
        }
        if self.choices is not None:
            info["values"] = self.values
            info["labels"] = self.labels
        return info


#: Parameter types whose value is a list in Metabase (field filters), so a listed set
#: of values is a multiple choice unless Metabase says otherwise.
_LIST_TYPES = ("string/=", "string/!=", "number/=", "number/!=", "id", "location/")


def _is_variable(target: Any) -> bool:
    return isinstance(target, (list, tuple)) and bool(target) and target[0] == "variable"


def _choices(decl: Mapping[str, Any]) -> tuple[tuple[Any, str], ...] | None:
    """``(value, label)`` pairs from a static list (items ``v`` or ``[v, label]``)."""
    values = decl.get("values")
    labels = decl.get("labels")
    if decl.get("values_source_type") == "static-list":
        config = decl.get("values_source_config") or {}
        values = config.get("values") if isinstance(config, Mapping) else None
        labels = None
    if not isinstance(values, (list, tuple)) or not values:
        return None
    if not isinstance(labels, (list, tuple)) or len(labels) != len(values):
        labels = [None] * len(values)
    pairs: list[tuple[Any, str]] = []
    for item, label in zip(values, labels, strict=True):
        if isinstance(item, (list, tuple)) and item:
            value = item[0]
            if len(item) > 1 and item[1] is not None:
                label = item[1]
        else:
            value = item
        pairs.append((value, str(value if label is None else label)))
    return tuple(pairs)


def declarations(source: Any) -> tuple[ParameterDecl, ...]:
    """The declarations of a card or dashboard (its JSON), or of a list of declarations."""
    if isinstance(source, Mapping):
        source = source.get("parameters") or []
    return tuple(ParameterDecl.from_json(d) for d in source or [] if isinstance(d, Mapping))


def as_declarations(
    source: Sequence[Mapping[str, Any] | ParameterDecl],
) -> list[ParameterDecl]:
    """Each item as a :class:`ParameterDecl` (JSON read, a declaration kept as is)."""
    return [ParameterDecl.from_json(d) for d in source]


def describe_parameters(declarations: Sequence[Mapping[str, Any] | ParameterDecl]) -> str:
    """``"day (date/all-options, required), min_orders (number/=)"`` — for error messages."""
    decls = as_declarations(declarations)
    if not decls:
        return (
            "it declares no parameters (a question built in the graphical editor takes "
            "filters only through a dashboard it is on)"
        )
    parts = []
    for decl in decls:
        extra = [decl.type]
        if decl.name and decl.name.casefold() != decl.key.casefold():
            extra.insert(0, f"{decl.name!r}")
        if decl.required:
            extra.append("required")
        parts.append(f"{decl.key} ({', '.join(extra)})")
    return ", ".join(parts)


def match_parameter(
    declarations: Sequence[Mapping[str, Any] | ParameterDecl],
    key: str,
    *,
    owner: str = "This card",
) -> Any:
    """The declaration ``key`` names: its slug, display name (case-insensitive) or id.

    Returns the item of ``declarations`` itself (a mapping or a :class:`ParameterDecl`).
    """
    return declarations[match_index(as_declarations(declarations), key, owner)]


def match_index(decls: Sequence[ParameterDecl], key: str, owner: str = "This card") -> int:
    """The index of the declaration ``key`` names; ParameterError names the choices."""
    if not isinstance(key, str):
        raise ParameterError(
            f"Parameter names are strings, not {key!r}. "
            f"{owner}'s parameters: {describe_parameters(decls)}."
        )
    wanted = key.strip()
    folded = wanted.casefold()
    rules: tuple[Callable[[ParameterDecl], bool], ...] = (
        lambda d: d.slug == wanted,
        lambda d: (d.slug or "").casefold() == folded,
        lambda d: (d.name or "").casefold() == folded,
        lambda d: d.id == wanted,
    )
    for rule in rules:
        found = [i for i, d in enumerate(decls) if rule(d)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ParameterError(
                f"{key!r} matches several parameters of {owner.lower()}; use one of the slugs: "
                f"{', '.join(str(decls[i].slug) for i in found)}."
            )
    raise ParameterError(
        f"{owner} has no parameter {key!r}. Its parameters: {describe_parameters(decls)}. "
        "Use a slug or a display name."
    )
